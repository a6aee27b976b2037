/**
 * The plugin contract. Every technique is a plugin: a name, a family, a one-line
 * summary, a typed parameter schema (which drives the CLI's parsing, validation
 * and help) and a `run(ctx, params)` that returns a {@linkcode Result}. The
 * context gives the Net, the input images, a seeded RNG, progress reporting and
 * `ctx.run(other, params)` so that plugins compose.
 *
 * @module
 */
import type { tf } from "./tf.ts";
import type { Net } from "./net.ts";
import type { DataSource } from "./data/source.ts";
import type { Random } from "./random.ts";
import type { Result } from "./result.ts";
import { type ParamSchema, type ParamValues, resolveParams } from "./params.ts";

/** The families of the lecture's techniques (users may name their own). */
export type Family = "inspect" | "attribute" | "optimize" | "fool" | "train" | "design";

/** The images a plugin works on. */
export interface InputImages {
  /** Display pixels `[n, h, w, c]` in [0, 1], at the model's input size. */
  pixels: tf.Tensor4D;
  /** The same images in model input space. */
  x: tf.Tensor4D;
  /** Known true classes (or -1 where unknown). */
  labels: number[];
  /** Names (file names, or `digit 0 (label 7)`). */
  names: string[];
}

/** What `run` receives besides its parameters. */
export interface Context {
  /** The model. */
  readonly net: Net;
  /** The input images. */
  readonly images: InputImages;
  /** A generator seeded for this run. */
  readonly rng: Random;
  /** The seed of this run. */
  readonly seed: number;
  /**
   * Megabytes of activations a batch may take: plugins size their default
   * batches with `batchSizeFor(net, cap, { memoryMB })`.
   * @default CONVLENS_MEMORY_MB or 512
   */
  readonly memoryMB?: number;
  /** Reports progress of the running plugin. */
  progress(done: number, total: number): void;
  /** Reports a warning (kept in the result's notes by the runner). */
  warn(message: string): void;
  /**
   * The labelled images of this run, for plugins that read a data set
   * (top-k patches, deletion, attack success): the data the user named
   * (`--data`, `Lens.open({ data })`), or a built-in model's own test data.
   * @throws {Error} for a model without built-in data when none was named,
   *   saying how to name some.
   */
  data(): Promise<DataSource>;
  /** Runs another plugin (by object or registered name) with the same Net and images. */
  run<S extends ParamSchema>(
    plugin: Plugin<S> | string,
    params?: Partial<Record<keyof S, unknown>>,
  ): Promise<Result>;
  /** Runs another plugin on other images. */
  runOn<S extends ParamSchema>(
    images: InputImages,
    plugin: Plugin<S> | string,
    params?: Partial<Record<keyof S, unknown>>,
  ): Promise<Result>;
}

/**
 * A technique. `S` is its parameter schema; `run` gets the values typed from it.
 */
export interface Plugin<S extends ParamSchema = ParamSchema> {
  /** Unique name, kebab-case: the CLI's sub-command. */
  name: string;
  /** Family (lecture part). */
  family: Family | (string & Record<never, never>);
  /** One line for `--help`. */
  summary: string;
  /** Parameter schema. */
  params: S;
  /**
   * Whether it works on input images. A plugin that reads only the model (or
   * builds its own data) says `false`, and then runs on any model without
   * `--input`; the others get a clear error when there are no images.
   * @default true
   */
  needsImages?: boolean;
  /**
   * The names and shapes of the tensors the result carries, for these parameters
   * (the conformance test checks the result against it).
   */
  resultShape?(net: Net, params: ParamValues<S>, images: InputImages): Record<string, number[]>;
  /**
   * Parameter sets the demo report runs (each one section); default: one run
   * with the defaults.
   */
  demo?: Partial<Record<keyof S, unknown>>[];
  /** Does the work. */
  run(ctx: Context, params: ParamValues<S>): Promise<Result>;
}

/**
 * A plugin of any schema, as registries and lists hold them.
 */
// deno-lint-ignore no-explicit-any
export type AnyPlugin = Plugin<any>;

/**
 * Defines a plugin; the identity function that gives `run` its typed parameters.
 *
 * @param plugin The plugin.
 * @returns The same plugin.
 * @example A plugin that reports the predicted class
 * ```ts
 * import { definePlugin } from "./plugin.ts";
 * import { Result } from "./result.ts";
 * export const top1 = definePlugin({
 *   name: "top1",
 *   family: "inspect",
 *   summary: "Predicted class of each input image",
 *   params: { of: { type: "integer", default: 0, min: 0, help: "image index" } },
 *   async run(ctx, p) {
 *     const probs = ctx.net.probabilities(ctx.images.x);
 *     const best = (await probs.argMax(1).array() as number[])[p.of];
 *     probs.dispose();
 *     return new Result("top1", "Top-1").figure("class", best);
 *   },
 * });
 * ```
 */
export function definePlugin<const S extends ParamSchema>(plugin: Plugin<S>): Plugin<S> {
  if (!/^[a-z][a-z0-9-]*$/.test(plugin.name)) {
    throw new TypeError(
      `Plugin name "${plugin.name}" must be kebab-case (lower-case letters, digits, dashes)`,
    );
  }
  return plugin;
}

/** Plugins by name. */
export class Registry {
  readonly #plugins = new Map<string, AnyPlugin>();

  /** Creates a registry holding `plugins`. */
  constructor(plugins: readonly AnyPlugin[] = []) {
    for (const p of plugins) this.add(p);
  }

  /**
   * Adds a plugin; a plugin of the same name is replaced (a user's version wins).
   * @throws {TypeError} when it is not a plugin.
   */
  add(plugin: AnyPlugin): this {
    if (!plugin || typeof plugin.run !== "function" || typeof plugin.name !== "string") {
      throw new TypeError(
        "Not a plugin: export an object made with definePlugin({ name, family, summary, params, run })",
      );
    }
    this.#plugins.set(plugin.name, plugin);
    return this;
  }

  /**
   * The plugin of that name.
   * @throws {RangeError} listing close names.
   */
  get(name: string): AnyPlugin {
    const p = this.#plugins.get(name);
    if (p) return p;
    const names = [...this.#plugins.keys()];
    const close = names.filter((n) => n.includes(name) || name.includes(n));
    throw new RangeError(
      `Unknown plugin "${name}"${close.length ? ` (did you mean ${close.join(", ")}?)` : ""}; ` +
        `plugins: ${names.join(", ")}`,
    );
  }

  /** Whether a plugin of that name is registered. */
  has(name: string): boolean {
    return this.#plugins.has(name);
  }

  /** All plugins, in the order added. */
  list(): AnyPlugin[] {
    return [...this.#plugins.values()];
  }
}

/** Checks parameters of `plugin` for `net` (layer names included). */
export function checkParams<S extends ParamSchema>(
  plugin: Plugin<S>,
  net: Net,
  raw: Record<string, unknown>,
): ParamValues<S> {
  return resolveParams(plugin.name, plugin.params, raw, net.layers.map((l) => l.name));
}
