/**
 * The tests' short form of `core/runner.ts`: run a plugin on a Net in memory with
 * the plugins `ctx.run` may call by name, and a seed.
 *
 * @module
 */
import type { Net } from "../core/net.ts";
import { type AnyPlugin, type InputImages, type Plugin, Registry } from "../core/plugin.ts";
import type { ParamSchema } from "../core/params.ts";
import type { Result } from "../core/result.ts";
import { runPlugin as run } from "../core/runner.ts";

/** Runs `plugin` on `net` and `images`; `plugins` are what `ctx.run` resolves by name. */
export function runPlugin<S extends ParamSchema>(
  net: Net,
  images: InputImages,
  plugin: Plugin<S> | string,
  params: Partial<Record<keyof S, unknown>> = {},
  plugins: readonly AnyPlugin[] = [],
  seed = 0,
): Promise<Result> {
  return run(net, images, plugin, params, { registry: new Registry(plugins), seed });
}
