/**
 * The evaluation kit of the attribution methods, shared by the pointing game, the
 * deletion metric and the sanity check: the `methods` and `methodParams`
 * parameters, held-out images that fit the model (canvases with the digits'
 * boxes, or digits), and Spearman's rank correlation (Adebayo et al. 2018).
 *
 * @example Rank correlation of two maps
 * ```ts
 * import { spearman } from "./evaluation.ts";
 * if (spearman([1, 2, 3], [10, 20, 300]) !== 1) throw new Error("spearman");
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Context, InputImages } from "../../../core/plugin.ts";
import { ParamError } from "../../../core/params.ts";
import type { Box } from "../../../core/images/grids.ts";
import { imagesFromPixels } from "../../../core/inputs.ts";
import { canvasSet, heldOutCanvases } from "../../../core/datasets.ts";
import type { DataSource } from "../../../core/data/source.ts";
import { takeAttribution } from "../attribution.ts";

/**
 * Parses a comma-separated list of attribution plugin names.
 *
 * @param list E.g. `"saliency,grad-cam"`.
 * @param what The caller, for messages.
 * @returns The names, trimmed, at least one.
 * @throws {RangeError} for an empty list.
 */
export function methodList(list: string, what: string): string[] {
  const names = list.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) {
    throw new RangeError(
      `${what}: give at least one attribution method, e.g. --methods saliency,grad-cam`,
    );
  }
  return names;
}

/** Default per-method parameters of the evaluations: lighter than the methods' own defaults. */
export const EVALUATION_METHOD_PARAMS =
  '{"integrated-gradients":{"steps":16},"smoothgrad":{"samples":10}}';

/**
 * The `methods` and `methodParams` parameters every evaluation plugin takes
 * (spread them into its schema, with its own default `methods`).
 */
export const EVALUATION_PARAMS = {
  methods: { type: "string", default: "saliency", help: "attribution plugins, comma-separated" },
  methodParams: {
    type: "string",
    default: EVALUATION_METHOD_PARAMS,
    help: "parameters of the methods, JSON by method name",
  },
} as const;

/**
 * Parses the `methodParams` parameter of an evaluation: a JSON object from method
 * name to that method's parameters.
 *
 * @param json The parameter's value.
 * @param what The caller, for messages.
 * @returns Parameters by method name.
 * @throws {ParamError} when it is not such an object.
 */
export function parseMethodParams(
  json: string,
  what: string,
): Record<string, Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    v = undefined;
  }
  const isObject = (o: unknown) => typeof o === "object" && o !== null && !Array.isArray(o);
  if (!isObject(v) || !Object.values(v as object).every(isObject)) {
    throw new ParamError(
      `Parameter --methodParams of ${what} must be a JSON object of parameters by method, such as ` +
        `{"integrated-gradients":{"steps":16}}, got ${json}`,
    );
  }
  return v as Record<string, Record<string, unknown>>;
}

/**
 * Spearman's rank correlation of two equally long lists (ties get their mean
 * rank), as used by Adebayo et al. to compare saliency maps.
 *
 * @param a First values.
 * @param b Second values.
 * @returns The correlation in [-1, 1] (0 when either list is constant).
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError("spearman: lists of different lengths");
  const ra = ranks(a), rb = ranks(b);
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += ra[i];
    mb += rb[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i] - ma, db = rb[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/** Ranks 0..n-1 of values (ascending), ties given their mean rank. */
export function ranks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => v[i] - v[j]);
  const out = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && v[order[j + 1]] === v[order[i]]) j++;
    const r = (i + j) / 2;
    for (let k = i; k <= j; k++) out[order[k]] = r;
    i = j + 1;
  }
  return out;
}

/**
 * Held-out data for an evaluation that fits the model: 64x64x1 canvases with
 * boxes, 28x28x1 digits, or else the context's own images.
 */
export interface EvaluationImages {
  /** The images (the caller frees them). */
  images: InputImages;
  /** Boxes of the digits (canvases only). */
  boxes?: Box[];
  /** Where they came from, for captions. */
  source: string;
}

/**
 * Held-out data for an evaluation, read a slice at a time: an evaluation (or
 * one shard of it) reads images `[lo, hi)` batch by batch, so its memory is
 * bounded by the batch, not by the number of images.
 */
export interface EvaluationSet {
  /** How many images there are. */
  count: number;
  /** What they are, for captions. */
  source: string;
  /**
   * Images `[lo, hi)` (named by their global index).
   * @param lo First image.
   * @param hi One past the last.
   * @returns The images (free them with {@linkcode disposeEvaluationImages}).
   */
  read(lo: number, hi: number): Promise<EvaluationImages>;
  /**
   * The images at `indices`, in that order.
   * @param indices Global indices in `[0, count)`.
   * @returns The images (free them with {@linkcode disposeEvaluationImages}).
   */
  readAt(indices: readonly number[]): Promise<EvaluationImages>;
}

/**
 * Labelled images for an evaluation, read on demand: the built-in held-out
 * canvases (with the digits' boxes, generated window by window) for the
 * built-in canvas model, else the first images of the run's data set
 * (`ctx.data()`, read by index), else the context's own images.
 *
 * @param ctx The running plugin's context.
 * @param count How many images.
 * @param what The caller, for messages.
 * @param needBoxes Refuse models for which no boxes are known.
 * @param fragmentIntensity Brightness of the canvases' clutter (0.5: the built-in
 *   held-out canvases; 1: as bright as the digit).
 * @returns The set; nothing is read until `read` is called.
 * @throws {RangeError} when boxes are needed and the model does not take canvases.
 */
export async function evaluationSet(
  ctx: Context,
  count: number,
  what: string,
  needBoxes = false,
  fragmentIntensity?: number,
): Promise<EvaluationSet> {
  const { height, width, channels } = ctx.net.input;
  const set = (
    n: number,
    source: string,
    readAt: (indices: readonly number[]) => Promise<EvaluationImages>,
  ): EvaluationSet => {
    const check = (indices: readonly number[]) => {
      const bad = indices.find((i) => !(Number.isInteger(i) && i >= 0 && i < n));
      if (bad !== undefined) {
        throw new RangeError(`${what}: image ${bad} is not among the ${n} held-out ones`);
      }
    };
    return {
      count: n,
      source,
      async read(lo, hi) {
        const indices = Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
        check(indices);
        return await readAt(indices);
      },
      async readAt(indices) {
        check(indices);
        return await readAt(indices);
      },
    };
  };
  // Built-in data serves the built-in models only: the canvases, whose boxes
  // are known, the canvas model.
  if (ctx.net.sidecar.name === "canvas") {
    const builtIn = fragmentIntensity === undefined || fragmentIntensity === 0.5;
    const described = `${count} held-out canvases` +
      (builtIn ? "" : ` with clutter at ${fragmentIntensity} of the digits' brightness`);
    // Canvas k is the same whatever window generates it: contiguous indices in
    // one window, others one by one.
    const window = (offset: number, n: number) =>
      builtIn
        ? heldOutCanvases({ count: n, offset })
        : canvasSet({ part: "heldOut", count: n, offset, fragmentIntensity });
    return set(count, described, async (indices) => {
      const contiguous = indices.every((v, i) => v === indices[0] + i);
      const parts = contiguous
        ? [await window(indices[0] ?? 0, Math.max(1, indices.length))]
        : await Promise.all(indices.map((i) => window(i, 1)));
      const images = tf.tidy(() => {
        const all = parts.length === 1 ? parts[0].images : tf.concat(parts.map((c) => c.images));
        return all.slice([0, 0, 0, 0], [indices.length, -1, -1, -1]) as tf.Tensor4D;
      });
      tf.dispose(parts.map((c) => c.images));
      const labels = parts.flatMap((c) => c.labels).slice(0, indices.length);
      return {
        images: imagesFromPixels(
          ctx.net,
          images,
          labels,
          labels.map((l, k) => `canvas ${indices[k]} (${l})`),
        ),
        boxes: parts.flatMap((c) => c.boxes).slice(0, indices.length),
        source: described,
      };
    });
  }
  if (needBoxes) {
    throw new RangeError(
      `${what} needs images with known object boxes: it uses the built-in held-out canvases, ` +
        `which serve the built-in canvas model (this model takes ${height}x${width}x` +
        `${channels} images); run it with --model canvas`,
    );
  }
  let data: DataSource | undefined;
  try {
    data = await ctx.data();
  } catch {
    // No data set for this model: the input images are what there is.
  }
  if (data) {
    const source = data;
    const n = Math.min(count, source.size);
    const described = `the first ${n} images of ${source.name}`;
    return set(n, described, async (indices) => {
      const { x, y } = await source.batch(indices);
      const labels = Array.from(await y.data() as Int32Array);
      y.dispose();
      const names = labels.map((l, k) => `${source.name} ${indices[k]} (${source.classes[l]})`);
      return { images: imagesFromPixels(ctx.net, x, labels, names), source: described };
    });
  }
  const n = Math.min(count, ctx.images.x.shape[0]);
  const described = `${n} input images`;
  // deno-lint-ignore require-await
  return set(n, described, async (indices) => {
    const pixels = tf.tidy(() =>
      tf.gather(ctx.images.pixels, tf.tensor1d(Int32Array.from(indices), "int32")) as tf.Tensor4D
    );
    return {
      images: imagesFromPixels(
        ctx.net,
        pixels,
        indices.map((i) => ctx.images.labels[i]),
        indices.map((i) => ctx.images.names[i]),
      ),
      source: described,
    };
  });
}

/**
 * Loads labelled images for an evaluation, all at once: the first `count` of
 * {@linkcode evaluationSet} (the built-in held-out canvases with the digits'
 * boxes for the built-in canvas model, else the first images of the run's data
 * set, else a copy of the context's own images).
 *
 * @param ctx The running plugin's context.
 * @param count How many images.
 * @param what The caller, for messages.
 * @param needBoxes Refuse models for which no boxes are known.
 * @param fragmentIntensity Brightness of the canvases' clutter (0.5: the built-in
 *   held-out canvases; 1: as bright as the digit).
 * @returns The images (free them with {@linkcode disposeEvaluationImages}).
 * @throws {RangeError} when boxes are needed and the model does not take canvases.
 */
export async function evaluationImages(
  ctx: Context,
  count: number,
  what: string,
  needBoxes = false,
  fragmentIntensity?: number,
): Promise<EvaluationImages> {
  const set = await evaluationSet(ctx, count, what, needBoxes, fragmentIntensity);
  return await set.read(0, set.count);
}

/** Frees evaluation images. */
export function disposeEvaluationImages(e: EvaluationImages): void {
  tf.dispose([e.images.pixels, e.images.x]);
}

/**
 * One attribution method's maps for images `start .. start + count - 1`, each
 * for its class: the step deletion and the pointing game take chunk by chunk.
 *
 * @param ctx The running plugin's context.
 * @param images The evaluation images.
 * @param classes The class to explain per image.
 * @param start First image of the chunk.
 * @param count Images in the chunk.
 * @param method The attribution plugin.
 * @param params Its extra parameters.
 * @returns The attribution `[count, h, w, c]` (the caller disposes of it).
 */
export async function attributeChunk(
  ctx: Context,
  images: InputImages,
  classes: readonly number[],
  start: number,
  count: number,
  method: string,
  params: Record<string, unknown> = {},
): Promise<tf.Tensor4D> {
  const pixels = images.pixels.slice([start, 0, 0, 0], [count, -1, -1, -1]);
  const part = imagesFromPixels(ctx.net, pixels, classes.slice(start, start + count));
  try {
    return takeAttribution(
      await ctx.runOn(part, method, { ...params, class: part.labels, render: false }),
      method,
    );
  } finally {
    tf.dispose([part.pixels, part.x]);
  }
}
