/**
 * The entry point for scripts: a {@linkcode Lens} opens a model (the built-in
 * MNIST model by default), picks the backend, holds the input images and the
 * plugin registry (built-in plugins plus the user's own), runs plugins with a
 * seeded context and progress, and writes the HTML report.
 *
 * @module
 */
import { tf } from "./core/tf.ts";
import { initBackend } from "./backends/mod.ts";
import { loadNet } from "./core/load.ts";
import type { Net, Sidecar } from "./core/net.ts";
import { type AnyPlugin, type InputImages, type Plugin, Registry } from "./core/plugin.ts";
import type { ParamSchema } from "./core/params.ts";
import { runPlugin } from "./core/runner.ts";
import type { Result } from "./core/result.ts";
import { disposeImages, imagesFromPixels, loadImages } from "./core/inputs.ts";
import { type Progress, progressBar, silentProgress } from "./core/progress.ts";
import type { DataSource } from "./core/data/source.ts";
import { datasetFor } from "./core/data/dataset_for.ts";
import { type ReportOptions, writeReport } from "./core/report.ts";
import { builtinPlugins } from "./plugins/mod.ts";

/** Where the built-in models live. */
export const BUILTIN_MODELS: Record<string, URL> = {
  mnist: new URL("./models/mnist/", import.meta.url),
  canvas: new URL("./models/canvas/", import.meta.url),
  fashion: new URL("./models/fashion/", import.meta.url),
};

/** Options of {@linkcode Lens.open}. */
export interface LensOptions {
  /** A model folder, `model.json` path, http(s) URL, or a built-in name. @default "mnist" */
  model?: string;
  /** Backend: `auto`, `webgpu`, `wasm` or `cpu`. @default CONVLENS_BACKEND or "auto" */
  backend?: string;
  /** Seed of every run. @default 0 */
  seed?: number;
  /** Image files to work on; default: held-out images of a built-in model. @default [] */
  inputs?: string[];
  /** True classes of `inputs`, where known. @default [] */
  labels?: number[];
  /** How many images of the data to take when no inputs are given. @default 4 */
  count?: number;
  /**
   * Labelled images for the plugins that read a data set (and for the
   * inputs when none are given): `fashion`, `fashion-train`, `mnist`,
   * `canvas`, or a folder with one subfolder per class.
   * @default a built-in model's own test data; none for other models
   */
  data?: string;
  /** Convert colour inputs for a single-channel model. @default false */
  convert?: boolean;
  /** Overrides of the model's sidecar (labels, and the input contract field by field). @default {} */
  sidecar?: Sidecar;
  /** Show a progress bar on stderr. @default false */
  progress?: boolean;
  /** Print nothing (backend choice included). @default false */
  quiet?: boolean;
  /** Seconds an http(s) model may take to arrive. @default 30 */
  timeout?: number;
  /** Refuse input images with more pixels than this, before decoding. @default 50_000_000 */
  maxPixels?: number;
  /**
   * The output to explain, by output layer (graph node) name or index, for a
   * model with several outputs (overrides the sidecar's `output`).
   * @default the model's only output
   */
  output?: string | number;
  /**
   * Megabytes of activations one batch may take: the batched plugins
   * (smoothgrad, integrated-gradients, occlusion, top-patches, deletion,
   * pointing-game, sanity-check, adversarial, fooling images) size their
   * default batches to it; a `batchSize` given to a plugin wins.
   * @default CONVLENS_MEMORY_MB or 512
   */
  memoryMB?: number;
}

/** Refuses options that would give silently wrong results, before anything loads. */
function checkLensOptions(options: LensOptions): void {
  const { seed, count } = options;
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new RangeError(`seed must be a whole number, got ${seed}`);
  }
  if (count !== undefined && (!Number.isSafeInteger(count) || count < 1 || count > 100_000)) {
    throw new RangeError(`count must be a whole number from 1 to 100000, got ${count}`);
  }
  if (options.inputs !== undefined && !Array.isArray(options.inputs)) {
    throw new RangeError("inputs must be an array of image paths");
  }
}

function modelSource(model: string): string {
  const url = BUILTIN_MODELS[model];
  if (!url) return model;
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
}

/**
 * A model opened for study, with its images and plugins.
 *
 * @example Run a built-in plugin on the built-in model
 * ```ts ignore
 * import { Lens } from "./lens.ts";
 * const lens = await Lens.open({ quiet: true });
 * const result = await lens.run("summary");
 * console.log(result.figures.params);
 * result.dispose();
 * lens.dispose();
 * ```
 */
export class Lens {
  /** The model. */
  readonly net: Net;
  /** The plugins this lens knows. */
  readonly registry: Registry;
  /** The backend in use. */
  readonly backend: string;
  /** Seed of every run. */
  readonly seed: number;
  #images: InputImages;
  #progress: Progress;
  #warnings: string[] = [];
  #data: string | undefined;
  #source: Promise<DataSource> | undefined;
  #disposed = false;
  #memoryMB: number | undefined;

  private constructor(net: Net, images: InputImages, backend: string, options: LensOptions) {
    this.#data = options.data;
    this.#memoryMB = options.memoryMB;
    this.net = net;
    this.#images = images;
    this.backend = backend;
    this.seed = options.seed ?? 0;
    this.registry = new Registry(builtinPlugins);
    this.#progress = options.progress ? progressBar() : silentProgress;
  }

  /**
   * Opens a model and its input images.
   * @param options Model, backend, seed, inputs.
   * @returns The lens; free it with {@linkcode Lens.dispose}.
   */
  static async open(options: LensOptions = {}): Promise<Lens> {
    const backend = await initBackend(options.backend, { quiet: options.quiet });
    const name = options.model ?? "mnist";
    checkLensOptions(options);
    const loadWarnings: string[] = [];
    const net = await loadNet(modelSource(name), {
      sidecar: options.output === undefined
        ? options.sidecar
        : { ...options.sidecar, output: options.output },
      timeout: options.timeout,
      onWarning: (m) => {
        loadWarnings.push(m);
        if (!options.quiet) console.error(`warning: ${m}`);
      },
    });
    try {
      const images = options.inputs?.length
        ? await loadImages(net, options.inputs, {
          convert: options.convert,
          labels: options.labels,
          maxPixels: options.maxPixels,
          onWarning: (m) => options.quiet || console.error(`warning: ${m}`),
        })
        : await defaultImages(net, options.count ?? 4, options.data, options.quiet);
      const lens = new Lens(net, images, backend, options);
      lens.#warnings.push(...loadWarnings);
      return lens;
    } catch (err) {
      net.dispose();
      throw err;
    }
  }

  /**
   * The labelled images of this lens: the `data` it was opened with, or a
   * built-in model's own test data.
   * @returns The source (shared, read-only).
   * @throws {Error} for a model without built-in data opened without `data`.
   */
  data(): Promise<DataSource> {
    this.#source ??= datasetFor(this.net, this.#data);
    return this.#source;
  }

  /** The images plugins work on. */
  get images(): InputImages {
    return this.#images;
  }

  /** Replaces the input images (the old ones are freed). */
  setImages(images: InputImages): this {
    if (images !== this.#images) disposeImages(this.#images);
    this.#images = images;
    return this;
  }

  /** Wraps pixel tensors `[n, h, w, c]` in [0, 1] as images of this lens's model. */
  imagesFromPixels(pixels: tf.Tensor4D, labels?: number[], names?: string[]): InputImages {
    return imagesFromPixels(this.net, pixels, labels, names);
  }

  /** Registers a user's plugin (one of the same name is replaced). */
  use(plugin: AnyPlugin): this {
    this.registry.add(plugin);
    return this;
  }

  /**
   * Warnings so far: from opening the model (such as an input contract stated
   * nowhere) and from plugins.
   */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  /**
   * Runs a plugin on the lens's images.
   * @param plugin A plugin or the name of a registered one.
   * @param params Its parameters (checked against its schema and the model).
   * @returns Its result; free it with `result.dispose()`.
   */
  run<S extends ParamSchema>(
    plugin: Plugin<S> | string,
    params: Partial<Record<keyof S, unknown>> = {},
  ): Promise<Result> {
    return this.#run(this.#images, plugin, params);
  }

  /** Runs a plugin on other images. */
  runOn<S extends ParamSchema>(
    images: InputImages,
    plugin: Plugin<S> | string,
    params: Partial<Record<keyof S, unknown>> = {},
  ): Promise<Result> {
    return this.#run(images, plugin, params);
  }

  async #run<S extends ParamSchema>(
    images: InputImages,
    pluginOrName: Plugin<S> | string,
    raw: Partial<Record<keyof S, unknown>>,
  ): Promise<Result> {
    if (this.#disposed) {
      throw new Error(
        "This Lens was disposed (lens.dispose()): open a new one with Lens.open() to run plugins",
      );
    }
    const plugin = typeof pluginOrName === "string"
      ? this.registry.get(pluginOrName)
      : pluginOrName;
    this.#progress.start(plugin.name);
    try {
      const result = await runPlugin(this.net, images, plugin, raw, {
        registry: this.registry,
        seed: this.seed,
        progress: (done, total) => this.#progress.update(done, total),
        data: this.#data,
        memoryMB: this.#memoryMB,
        onWarning: (name, w) => {
          this.#warnings.push(`${name}: ${w}`);
          if (this.#progress !== silentProgress) console.error(`warning: ${w}`);
        },
      });
      this.#progress.end();
      return result;
    } catch (err) {
      this.#progress.end("failed");
      throw err;
    }
  }

  /**
   * Writes a self-contained HTML report of results.
   * @param path The `.html` file.
   * @param results Results to include, in order.
   * @param options Title and extra text.
   */
  async report(path: string, results: Result[], options: ReportOptions = {}): Promise<void> {
    await writeReport(path, results, {
      ...options,
      model: options.model ?? `${this.net.sidecar.name ?? this.net.source} (${this.net.kind})`,
      backend: options.backend ?? this.backend,
    });
  }

  /** Frees the model and the images. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    disposeImages(this.#images);
    this.net.dispose();
  }
}

async function defaultImages(
  net: Net,
  count: number,
  data?: string,
  quiet?: boolean,
): Promise<InputImages> {
  let source: DataSource;
  try {
    source = await datasetFor(net, data);
  } catch (err) {
    const { height, width, channels } = net.input;
    // Named data that cannot be read is the user's mistake: say so now. A model
    // with no data at all still runs the plugins that need no images (summary,
    // the design and training experiments); the others refuse when run.
    if (data === undefined) {
      const none = () => tf.zeros([0, height, width, channels]) as tf.Tensor4D;
      return { pixels: none(), x: none(), labels: [], names: [] };
    }
    throw new RangeError(
      `No input images: this model takes ${height}x${width}x${channels} images; pass ` +
        `--input <png|jpg> (${(err as Error).message})`,
    );
  }
  const n = Math.min(count, source.size);
  if (n < count && !quiet) {
    console.error(`warning: ${source.name} holds ${source.size} images; taking ${n}, not ${count}`);
  }
  const { x, y } = await source.batch(Array.from({ length: n }, (_, i) => i));
  const labels = Array.from(await y.data());
  y.dispose();
  const names = labels.map((l, i) => `${source.name} image ${i} (${source.classes[l]})`);
  return imagesFromPixels(net, x, labels, names);
}
