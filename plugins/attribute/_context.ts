/**
 * A plugin context for a Net held in memory, without a {@linkcode Lens}: runs a
 * plugin with parameters checked against its schema, a seeded RNG and
 * `ctx.run`/`ctx.runOn` resolved in a registry. Used by the attribute family's
 * tests; `Lens` does the same for models opened from files.
 *
 * @module
 */
import type { Net } from "../../core/net.ts";
import {
  type AnyPlugin,
  type Context,
  type InputImages,
  type Plugin,
  Registry,
} from "../../core/plugin.ts";
import { type ParamSchema, resolveParams } from "../../core/params.ts";
import { seededRandom } from "../../core/random.ts";
import type { Result } from "../../core/result.ts";

/**
 * Runs a plugin on a Net in memory.
 *
 * @param net The model.
 * @param images The input images.
 * @param plugin The plugin or a name in `plugins`.
 * @param params Its parameters.
 * @param plugins Plugins that `ctx.run` may call by name.
 * @param seed Seed of the run.
 * @returns The result (the caller disposes of it).
 */
export function runPlugin<S extends ParamSchema>(
  net: Net,
  images: InputImages,
  plugin: Plugin<S> | string,
  params: Partial<Record<keyof S, unknown>> = {},
  plugins: readonly AnyPlugin[] = [],
  seed = 0,
): Promise<Result> {
  const registry = new Registry(plugins);
  const warnings: string[] = [];
  const go = async (
    imgs: InputImages,
    p: AnyPlugin | string,
    raw: Record<string, unknown>,
    depth: number,
  ): Promise<Result> => {
    const pl = typeof p === "string" ? registry.get(p) : p;
    if (depth > 16) throw new Error(`Plugin "${pl.name}": plugins call each other too deeply`);
    const values = resolveParams(pl.name, pl.params, raw, net.layers.map((l) => l.name));
    const ctx: Context = {
      net,
      images: imgs,
      rng: seededRandom(seed),
      seed,
      progress: () => {},
      warn: (m) => warnings.push(m),
      run: (q, r) =>
        go(imgs, q as AnyPlugin | string, (r ?? {}) as Record<string, unknown>, depth + 1),
      runOn: (im, q, r) =>
        go(im, q as AnyPlugin | string, (r ?? {}) as Record<string, unknown>, depth + 1),
    };
    const result = await pl.run(ctx, values);
    for (const w of warnings.splice(0)) result.note(`Warning: ${w}`);
    return result;
  };
  return go(images, plugin as AnyPlugin | string, params as Record<string, unknown>, 0);
}
