/**
 * Running a plugin: parameters checked against its schema and the model, a
 * context with a seeded RNG, progress and warnings, and `ctx.run` / `ctx.runOn`
 * resolved in a registry so that plugins compose. `Lens` runs every plugin
 * through here; scripts and tests with a Net in memory can call it directly.
 *
 * @module
 */
import type { Net } from "./net.ts";
import type { AnyPlugin, Context, InputImages, Plugin } from "./plugin.ts";
import type { DataSource } from "./data/source.ts";
import { datasetFor } from "./data/dataset_for.ts";
import { Registry } from "./plugin.ts";
import { type ParamSchema, resolveParams } from "./params.ts";
import { seededRandom } from "./random.ts";
import type { Result } from "./result.ts";
import { tf } from "./tf.ts";
import {
  isOutOfMemory,
  memoryBudgetMB,
  OutOfMemoryError,
  outOfMemoryError,
} from "./memory_budget.ts";

/** Options of {@linkcode runPlugin}. */
export interface RunOptions {
  /** Plugins that `ctx.run` may call by name. @default an empty registry */
  registry?: Registry;
  /** Seed of the run (every nested run starts from it too). @default 0 */
  seed?: number;
  /** Progress of the top-level plugin. @default none */
  progress?: (done: number, total: number) => void;
  /** Receives each warning, with the plugin that raised it. @default none */
  onWarning?: (plugin: string, message: string) => void;
  /** The data set plugins read (see `datasetFor`). @default the model's own */
  data?: string;
  /**
   * Megabytes of activations a batch may take; plugins size their default
   * batches to it (see `core/memory_budget.ts`).
   * @default CONVLENS_MEMORY_MB or 512
   */
  memoryMB?: number;
}

/** How deep plugins may call each other before a cycle is assumed. */
const MAX_DEPTH = 16;

/** A plugin's parameters that size its batches, named when it runs out of memory. */
function batchParams(plugin: AnyPlugin): string[] {
  return Object.keys(plugin.params).filter((k) => /batch|chunk/i.test(k));
}

/**
 * Runs `body` in an engine scope: on an out-of-memory error the tensors it made
 * are freed and the error names the parameters to lower; otherwise the tensors
 * it made stay, as if no scope had been opened.
 */
async function guardMemory<T>(
  plugin: AnyPlugin,
  memoryMB: number | undefined,
  body: () => Promise<T>,
): Promise<T> {
  const engine = tf.engine();
  engine.startScope(`convlens:${plugin.name}`);
  const scope = engine.state.activeScope;
  const close = (free: boolean) => {
    // Scopes opened inside and left open by a throw are closed first.
    while (engine.state.activeScope && engine.state.activeScope !== scope) engine.endScope();
    if (engine.state.activeScope !== scope) return;
    if (free) {
      // One by one: after an abort the backend may throw on each, and a throw
      // must not stop the rest being let go.
      for (const t of scope.track.splice(0)) {
        try {
          t.dispose();
        } catch {
          // the engine has counted it out already
        }
      }
    }
    engine.endScope(free ? undefined : scope.track.filter((t) => !t.isDisposed));
    // A gradient that threw before its backward pass leaves its tape behind, with
    // the tensors each op saved for it (kept, so no scope frees them).
    if (free && engine.state.gradientDepth === 0 && engine.state.activeTape?.length) {
      for (const node of engine.state.activeTape) {
        for (const t of node.saved ?? []) {
          try {
            t.dispose();
          } catch {
            // as above
          }
        }
      }
      engine.state.activeTape = [];
    }
  };
  try {
    const out = await body();
    close(false);
    return out;
  } catch (err) {
    if (err instanceof OutOfMemoryError) {
      close(true);
      // A nested run's: the outermost plugin with batch parameters names them,
      // as those are the ones the user set.
      if (batchParams(plugin).length === 0) throw err;
      throw outOfMemoryError(plugin.name, batchParams(plugin), err.cause, memoryMB);
    }
    if (isOutOfMemory(err)) {
      close(true);
      throw outOfMemoryError(plugin.name, batchParams(plugin), err, memoryMB);
    }
    close(false);
    throw err;
  }
}

/** The error for a plugin that works on images, run where there are none. */
function noImagesError(net: Net, plugin: string): RangeError {
  const { height, width, channels } = net.input;
  return new RangeError(
    `No input images for "${plugin}": this model takes ${height}x${width}x${channels} images ` +
      "and has no built-in data; pass --input <png|jpg> (Lens.open({ inputs })) or " +
      "--data <folder with one subfolder per class> (Lens.open({ data }))",
  );
}

/**
 * Runs a plugin on a Net and images. Warnings are kept in the result's notes.
 *
 * @param net The model.
 * @param images The input images.
 * @param plugin A plugin, or the name of one in `options.registry`.
 * @param params Its parameters (checked: unknown names, types, ranges, layers).
 * @param options Registry, seed, progress, warnings.
 * @returns The result; the caller disposes of it.
 */
export function runPlugin<S extends ParamSchema>(
  net: Net,
  images: InputImages,
  plugin: Plugin<S> | string,
  params: Partial<Record<keyof S, unknown>> = {},
  options: RunOptions = {},
): Promise<Result> {
  const registry = options.registry ?? new Registry();
  const seed = options.seed ?? 0;
  const layerNames = [...net.layers.map((l) => l.name), ...net.aliases.keys()];
  const memoryMB = memoryBudgetMB(options.memoryMB);
  let data: Promise<DataSource> | undefined;
  const go = async (
    imgs: InputImages,
    p: AnyPlugin | string,
    raw: Record<string, unknown>,
    depth: number,
  ): Promise<Result> => {
    const pl = typeof p === "string" ? registry.get(p) : p;
    if (depth > MAX_DEPTH) {
      throw new Error(`Plugin "${pl.name}": plugins call each other too deeply (a cycle?)`);
    }
    const values = resolveParams(pl.name, pl.params, raw, layerNames);
    if (pl.needsImages !== false && imgs.x.shape[0] === 0) throw noImagesError(net, pl.name);
    // A layer given by another name (a GraphModel's Keras name) reaches the
    // plugin as the layer's own name, which every other lookup uses.
    for (const [k, spec] of Object.entries(pl.params)) {
      const v = (values as Record<string, unknown>)[k];
      if ((spec as { type: string }).type === "layer" && typeof v === "string") {
        (values as Record<string, unknown>)[k] = net.canonicalLayer(v);
      }
    }
    const warnings: string[] = [];
    const ctx: Context = {
      net,
      images: imgs,
      rng: seededRandom(seed),
      seed,
      memoryMB,
      progress: (done, total) => {
        if (depth === 0) options.progress?.(done, total);
      },
      warn: (m) => warnings.push(m),
      data: () => data ??= datasetFor(net, options.data),
      run: (q, r) =>
        go(imgs, q as AnyPlugin | string, (r ?? {}) as Record<string, unknown>, depth + 1),
      runOn: (im, q, r) =>
        go(im, q as AnyPlugin | string, (r ?? {}) as Record<string, unknown>, depth + 1),
    };
    const result = await guardMemory(pl, options.memoryMB, () => pl.run(ctx, values));
    result.family ??= pl.family;
    for (const w of warnings) {
      result.note(`Warning: ${w}`);
      options.onWarning?.(pl.name, w);
    }
    return result;
  };
  return go(images, plugin as AnyPlugin | string, params as Record<string, unknown>, 0);
}
