/**
 * The attribution contract that every method of the `attribute` family implements
 * (as Captum's `attribute(inputs, target, ...)`): given a Net, a batch `x` in model
 * input space and the class to explain for each image, return a signed tensor of
 * the same shape as `x` saying how much each input value counts for that class.
 * Wrappers such as SmoothGrad take any {@linkcode Attribution} and return one.
 *
 * The module also holds what the methods share: class resolution (`class`
 * parameter), class-score and unit objectives, the reduction of an attribution to
 * a per-pixel map (`max_k |.|` over channels as in Simonyan et al. 2014, or a sum),
 * the standard rendering (input, signed attribution, heatmap and overlay per
 * image) and the plugin convention: an *attribution plugin* takes the parameters
 * in {@linkcode ATTRIBUTION_PARAMS} (`class`, `render`) and puts its attribution in
 * the result's tensor `attribution`, so that other plugins (SmoothGrad, guided
 * Grad-CAM, the evaluations) compose with it by name through `ctx.run`/`ctx.runOn`,
 * user plugins included ({@linkcode pluginAttribution}).
 *
 * @example Saliency of the predicted class through the contract
 * ```ts ignore
 * import { tf } from "../../core/tf.ts";
 * import { attributionMap, predictedClasses } from "./attribution.ts";
 * import { saliencyAttribution } from "./saliency.ts";
 * const target = await predictedClasses(net, x);
 * const attr = await saliencyAttribution.attribute(net, x, target);
 * const map = attributionMap(attr); // [n, h, w], max_k |d s_y / d x|
 * tf.dispose([attr, map]);
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { gradient, type Objective, type ReluRule } from "../../core/gradients.ts";
import type { AnyPlugin, Context, InputImages } from "../../core/plugin.ts";
import { Result } from "../../core/result.ts";
import { ParamError } from "../../core/params.ts";
import { toDisplay } from "../../core/images/display.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { drawBox, grid } from "../../core/images/grids.ts";
import type { Box } from "../../core/images/grids.ts";
import { imagesFromPixels } from "../../core/inputs.ts";
import {
  CANVAS_SIZE,
  canvasSet,
  DIGIT_SIZE,
  heldOutCanvases,
  heldOutDigits,
} from "../../core/datasets.ts";

/**
 * An attribution method: one `attribute` call explains a whole batch.
 *
 * @typeParam O The method's options.
 */
export interface Attribution<O extends object = Record<string, unknown>> {
  /** The method's name (the plugin's name for built-in methods). */
  readonly name: string;
  /**
   * Attributes each image's class score to its input values.
   *
   * @param net The model.
   * @param x A batch `[n, h, w, c]` in model input space (not disposed).
   * @param target The class to explain, one per image (checked against the model).
   *   Methods that explain a layer unit instead say so in their options.
   * @param options Method options.
   * @returns A signed `[n, h, w, c]` tensor, the caller's to dispose.
   */
  attribute(
    net: Net,
    x: tf.Tensor4D,
    target: readonly number[],
    options?: O,
  ): Promise<tf.Tensor4D>;
}

/** Which class score an attribution explains. */
export type ScoreKind = "logit" | "prob" | "logprob";

/** The score kinds, for parameter schemas. */
export const SCORE_KINDS: readonly ScoreKind[] = ["logit", "prob", "logprob"];

/**
 * How an attribution `[n, h, w, c]` becomes a map `[n, h, w]`:
 * `max-abs` is Simonyan's `max_k |a_ijk|`, `sum-abs` sums `|a|` over channels,
 * `sum` sums the signed values (the total contribution of a pixel).
 */
export type MapReduction = "max-abs" | "sum-abs" | "sum";

/** The reductions, for parameter schemas. */
export const MAP_REDUCTIONS: readonly MapReduction[] = ["max-abs", "sum-abs", "sum"];

/** The class-score parameter of the gradient attributions. */
export const TARGET_PARAM = {
  type: "enum",
  choices: ["logit", "prob", "logprob"] as const,
  default: "logit",
  help: "score to differentiate: logit (s_y), prob or logprob",
} as const;

/** The type of {@linkcode TARGET_PARAM}. */
export type TargetParam = typeof TARGET_PARAM;

/**
 * The parameters every attribution plugin takes (spread them into its schema):
 * `class`, the class to explain (one for all images or one per image; -1 or left
 * out: the predicted class), and `render`, whether to draw the figure (composing
 * plugins turn it off).
 */
export const ATTRIBUTION_PARAMS = {
  class: {
    type: "numbers",
    help: "class to explain: one for all images or one per image (default: predicted)",
  },
  render: { type: "boolean", default: true, help: "draw the figure (off when composed)" },
} as const;

function checkBatch(net: Net, x: tf.Tensor, what: string): void {
  if (!(x instanceof tf.Tensor) || x.isDisposed) {
    throw new TypeError(`${what}: expected a live [n, h, w, c] tensor as input`);
  }
  net.checkInput(x);
}

/**
 * The predicted class of each image.
 *
 * @param net The model.
 * @param x A batch in model input space.
 * @returns The argmax of the logits, one per image.
 */
export async function predictedClasses(net: Net, x: tf.Tensor4D): Promise<number[]> {
  return Array.from(await readOnce(tf.tidy(() => net.logits(x).argMax(1))));
}

/**
 * Reads a tensor's values asynchronously and disposes of it. Plugins never read
 * synchronously: on WebGPU under Deno, `dataSync()` of a GPU-resident tensor fails.
 *
 * @param t A tensor the caller owns (disposed, whether the read succeeds or not).
 * @returns Its values.
 */
export async function readOnce<R extends tf.Rank>(
  t: tf.Tensor<R>,
): Promise<tf.TypedArray> {
  try {
    return await t.data() as tf.TypedArray;
  } finally {
    t.dispose();
  }
}

/**
 * The class to explain for each image: `given` has one class for all images or
 * one per image; -1 (or nothing given) stands for the predicted class.
 *
 * @param net The model.
 * @param x The batch.
 * @param given Classes asked for.
 * @param what The caller, for messages.
 * @returns One checked class per image.
 * @throws {RangeError} for a class out of range or a list of the wrong length
 *   (the promise rejects).
 */
export async function resolveClasses(
  net: Net,
  x: tf.Tensor4D,
  given: readonly number[] | undefined,
  what = "attribution",
): Promise<number[]> {
  const n = x.shape[0];
  const list = given ?? [];
  if (list.length > 1 && list.length !== n) {
    throw new RangeError(
      `${what}: ${list.length} classes given for ${n} images; give one class for all images or one per image`,
    );
  }
  const wanted = Array.from(
    { length: n },
    (_, i) => list.length === 0 ? -1 : list[list.length === 1 ? 0 : i],
  );
  for (const c of wanted) {
    if (c !== -1) {
      try {
        net.checkClass(c);
      } catch (err) {
        throw new RangeError(`${what}: ${(err as Error).message}`);
      }
    }
  }
  if (!wanted.includes(-1)) return wanted;
  const predicted = await predictedClasses(net, x);
  return wanted.map((c, i) => (c === -1 ? predicted[i] : c));
}

/**
 * Checks a target list against the batch and the model's classes.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param what The caller, for messages.
 * @throws {RangeError} for a wrong count or a class out of range.
 */
export function checkTarget(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  what: string,
): void {
  checkBatch(net, x, what);
  if (!Array.isArray(target) || target.length !== x.shape[0]) {
    throw new RangeError(
      `${what}: give one target class per image (${x.shape[0]}), got ${
        Array.isArray(target) ? target.length : typeof target
      }`,
    );
  }
  for (const c of target) {
    try {
      net.checkClass(c);
    } catch (err) {
      throw new RangeError(`${what}: ${(err as Error).message}`);
    }
  }
}

/**
 * The class scores of a batch, summed: `sum_i score_i[target_i]`, where the score
 * is the logit (unnormalized, Simonyan's `s_y`), the probability or its log. Each
 * image's gradient of the sum is its own score's gradient.
 *
 * @param target One class per image.
 * @param kind Which score.
 * @returns The objective, for {@linkcode gradient}.
 */
export function classObjective(target: readonly number[], kind: ScoreKind = "logit"): Objective {
  if (!SCORE_KINDS.includes(kind)) {
    throw new RangeError(`Unknown score "${kind}": use one of ${SCORE_KINDS.join(", ")}`);
  }
  const classes = [...target];
  return {
    logits: true,
    output: false,
    value(result) {
      const s = result.logits as tf.Tensor2D;
      const scores = kind === "logit" ? s : kind === "prob" ? tf.softmax(s) : tf.logSoftmax(s);
      const pick = tf.oneHot(tf.tensor1d(classes, "int32"), s.shape[1]).toFloat();
      return tf.sum(tf.mul(scores, pick)) as tf.Scalar;
    },
  };
}

/**
 * Each image's class score, as numbers.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image.
 * @param kind Which score.
 * @returns One score per image.
 */
export async function classScores(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  kind: ScoreKind = "logit",
): Promise<number[]> {
  const t = tf.tidy(() => {
    const s = net.logits(x);
    const scores = kind === "logit" ? s : kind === "prob" ? tf.softmax(s) : tf.logSoftmax(s);
    const pick = tf.oneHot(tf.tensor1d([...target], "int32"), s.shape[1]).toFloat();
    return tf.sum(tf.mul(scores, pick), 1);
  });
  return Array.from(await readOnce(t));
}

/** Which activations of a layer a unit projection keeps. */
export type UnitMode = "strongest" | "neuron" | "channel";

/** The unit modes, for parameter schemas. */
export const UNIT_MODES: readonly UnitMode[] = ["strongest", "neuron", "channel"];

/**
 * A unit of a layer to project back to pixel space (Zeiler & Fergus): one
 * neuron, a whole channel, or the strongest neuron of a channel.
 */
export interface Unit {
  /** The layer. */
  layer: string;
  /** Which activations to keep. @default "strongest" */
  mode?: UnitMode;
  /** The channel (the unit, for a dense layer); -1: the most active one per image. @default -1 */
  channel?: number;
  /** Row of the neuron (`neuron` mode). @default 0 */
  row?: number;
  /** Column of the neuron (`neuron` mode). @default 0 */
  col?: number;
}

/** Where a unit projection found its unit in one image. */
export interface UnitChoice {
  /** Channel (or dense unit). */
  channel: number;
  /** Row (-1 for a whole channel or a dense unit). */
  row: number;
  /** Column (-1 for a whole channel or a dense unit). */
  col: number;
  /** The activation kept (the strongest one of a kept channel). */
  value: number;
}

/**
 * The mask of the activations a unit keeps, for each image of a batch, and where
 * they are. Validates the unit against the layer.
 *
 * @param net The model.
 * @param x The batch.
 * @param unit The unit.
 * @param what The caller, for messages.
 * @returns A 0/1 mask shaped like the layer's activation (the caller's) and the choices.
 * @throws {RangeError} for a channel, row or column out of range (the promise rejects).
 */
export async function unitMask(
  net: Net,
  x: tf.Tensor4D,
  unit: Unit,
  what: string,
): Promise<{ mask: tf.Tensor; choices: UnitChoice[] }> {
  const info = net.layer(unit.layer);
  const mode = unit.mode ?? "strongest";
  if (!UNIT_MODES.includes(mode)) {
    throw new RangeError(
      `${what}: unknown unit mode "${mode}"; use one of ${UNIT_MODES.join(", ")}`,
    );
  }
  const shape = info.outputShape;
  const spatial = shape.length === 3;
  if (!spatial && shape.length !== 1) {
    throw new RangeError(
      `${what}: layer "${unit.layer}" has output [${shape}]; give a layer with a grid (h x w x c) or a vector of units`,
    );
  }
  const channels = shape[shape.length - 1];
  const channel = unit.channel ?? -1;
  if (!Number.isInteger(channel) || channel < -1 || channel >= channels) {
    throw new RangeError(
      `${what}: channel ${channel} is out of range: layer "${unit.layer}" has ${channels} channels (0 to ${
        channels - 1
      }; -1 for the most active)`,
    );
  }
  const [h, w] = spatial ? shape : [1, 1];
  if (spatial && mode === "neuron") {
    const row = unit.row ?? 0, col = unit.col ?? 0;
    if (
      !Number.isInteger(row) || row < 0 || row >= h || !Number.isInteger(col) || col < 0 || col >= w
    ) {
      throw new RangeError(
        `${what}: neuron (${row}, ${col}) is outside layer "${unit.layer}"'s ${h}x${w} grid`,
      );
    }
  }
  const n = x.shape[0];
  const neuronOnly = !spatial || mode === "channel";
  const [mask, chan, pos, kept] = tf.tidy(() => {
    const r = net.forward(x, { taps: [unit.layer], stopAtTaps: true });
    const a = r.taps[unit.layer].reshape([n, h, w, channels]);
    const chan = channel === -1
      ? (a.max([1, 2]) as tf.Tensor2D).argMax(1)
      : tf.fill([n], channel, "int32");
    const chanMask = tf.oneHot(chan as tf.Tensor1D, channels).toFloat().reshape([
      n,
      1,
      1,
      channels,
    ]);
    let mask: tf.Tensor;
    let pos: tf.Tensor;
    if (neuronOnly) {
      mask = tf.mul(tf.ones([n, h, w, 1]), chanMask);
      pos = tf.fill([n], -1, "int32");
    } else if (mode === "neuron") {
      const where = tf.buffer([1, h, w, 1]);
      where.set(1, 0, unit.row ?? 0, unit.col ?? 0, 0);
      mask = tf.mul(where.toTensor(), chanMask);
      pos = tf.fill([n], (unit.row ?? 0) * w + (unit.col ?? 0), "int32");
    } else {
      const inChannel = tf.sum(tf.mul(a, chanMask), 3).reshape([n, h * w]);
      pos = inChannel.argMax(1);
      mask = tf.mul(tf.oneHot(pos as tf.Tensor1D, h * w).toFloat().reshape([n, h, w, 1]), chanMask);
    }
    // The strongest kept activation (the unit's own for a neuron).
    const kept = tf.max(
      tf.add(tf.mul(a, mask), tf.mul(tf.sub(1, mask), -1e30)).reshape([n, -1]),
      1,
    );
    return [mask.reshape([n, ...shape]), chan, pos, kept];
  });
  let c: tf.TypedArray, p: tf.TypedArray, v: tf.TypedArray;
  try {
    [c, p, v] = await Promise.all([readOnce(chan), readOnce(pos), readOnce(kept)]);
  } catch (err) {
    mask.dispose();
    throw err;
  }
  const choices: UnitChoice[] = Array.from({ length: n }, (_, i) => ({
    channel: c[i],
    row: p[i] < 0 ? -1 : Math.floor(p[i] / w),
    col: p[i] < 0 ? -1 : p[i] % w,
    value: v[i],
  }));
  return { mask, choices };
}

/**
 * The objective of a unit projection: `0.5 * sum((a * mask)^2)`, whose gradient
 * with respect to the layer's activation `a` is `a * mask`: the layer's
 * activations with all but the kept ones zeroed, as Zeiler & Fergus feed the
 * DeconvNet.
 *
 * @param layer The layer.
 * @param mask The mask from {@linkcode unitMask} (not disposed; keep it alive).
 * @returns The objective.
 */
export function unitObjective(layer: string, mask: tf.Tensor): Objective {
  return {
    taps: [layer],
    output: false,
    value(result) {
      const kept = tf.mul(result.taps[layer], mask);
      return tf.mul(0.5, tf.sum(tf.square(kept))) as tf.Scalar;
    },
  };
}

/** Options of {@linkcode projectBack}. */
export interface ProjectionOptions {
  /** A unit of a layer to project; without one, the target class score is. @default undefined */
  unit?: Unit;
  /** Which class score, when no unit is given. @default "logit" */
  target?: ScoreKind;
}

/** What {@linkcode projectBack} returns. */
export interface Projection {
  /** The projection in input space, shaped like the batch (the caller's). */
  attribution: tf.Tensor4D;
  /** Where the unit was found in each image (unit projections only). */
  choices?: UnitChoice[];
}

/**
 * Projects a class score or one layer unit back to input space under a ReLU
 * backward rule: the gradient of the score, or of the unit's objective
 * ({@linkcode unitObjective}), with respect to the input.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image (used when no unit is given).
 * @param rule `plain`, `deconv` (Zeiler & Fergus) or `guided` (Springenberg et al.).
 * @param options The unit, or the score kind.
 * @param what The caller, for messages.
 * @returns The projection and the units found.
 */
export async function projectBack(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  rule: ReluRule,
  options: ProjectionOptions = {},
  what = "projection",
): Promise<Projection> {
  if (!options.unit) {
    checkTarget(net, x, target, what);
    const { grad, value } = gradient(net, x, classObjective(target, options.target ?? "logit"), {
      rule,
    });
    value.dispose();
    return { attribution: grad as tf.Tensor4D };
  }
  checkBatch(net, x, what);
  const { mask, choices } = await unitMask(net, x, options.unit, what);
  try {
    const { grad, value } = gradient(net, x, unitObjective(options.unit.layer, mask), { rule });
    value.dispose();
    return { attribution: grad as tf.Tensor4D, choices };
  } finally {
    mask.dispose();
  }
}

/**
 * Reduces an attribution over channels to one value per pixel.
 *
 * @param attribution `[n, h, w, c]`.
 * @param reduce `max-abs` (Simonyan), `sum-abs` or `sum`.
 * @returns A new `[n, h, w]` map.
 */
export function attributionMap(
  attribution: tf.Tensor4D,
  reduce: MapReduction = "max-abs",
): tf.Tensor3D {
  if (!MAP_REDUCTIONS.includes(reduce)) {
    throw new RangeError(
      `Unknown map reduction "${reduce}": use one of ${MAP_REDUCTIONS.join(", ")}`,
    );
  }
  return tf.tidy(() => {
    if (reduce === "max-abs") return attribution.abs().max(3) as tf.Tensor3D;
    if (reduce === "sum-abs") return attribution.abs().sum(3) as tf.Tensor3D;
    return attribution.sum(3) as tf.Tensor3D;
  });
}

/** Options of {@linkcode renderAttribution}. */
export interface RenderOptions {
  /** Title drawn over the grid. @default "" */
  title?: string;
  /** Most images drawn. @default 16 */
  maxImages?: number;
  /** Boxes to draw on the overlays (one per image), e.g. the digit's box. @default undefined */
  boxes?: readonly Box[];
  /** Points to mark on the overlays (row, column per image), e.g. a map's argmax. @default undefined */
  points?: readonly (readonly [number, number])[];
  /** Heatmap opacity over the image. @default 0.6 */
  alpha?: number;
}

/**
 * The standard figure of an attribution: one row per image with the input, the
 * signed attribution (channel sum, blue negative, red positive, each image on its
 * own scale), the map (inferno, 99th percentile of each image to full) and the
 * map over the image.
 *
 * @param pixels Display pixels `[n, h, w, c]` in [0, 1].
 * @param attribution The attribution `[n, h, w, c]`.
 * @param map Its map `[n, h, w]`.
 * @param labels One caption per image (cut to the tile).
 * @param options Title, boxes, points, limits.
 * @returns A new `[H, W, 3]` image in [0, 1].
 */
export function renderAttribution(
  pixels: tf.Tensor4D,
  attribution: tf.Tensor4D,
  map: tf.Tensor3D,
  labels: readonly string[],
  options: RenderOptions = {},
): tf.Tensor3D {
  const n = Math.min(pixels.shape[0], options.maxImages ?? 16);
  const [, h, w] = pixels.shape;
  const alpha = options.alpha ?? 0.6;
  const scale = Math.max(1, Math.floor(112 / Math.max(h, w)));
  const rows = tf.tidy(() => {
    const px = pixels.slice([0, 0, 0, 0], [n, -1, -1, -1]);
    const rgb = px.shape[3] === 1 ? tf.tile(px, [1, 1, 1, 3]) : px;
    const signed = toDisplay(attribution.slice([0, 0, 0, 0], [n, -1, -1, -1]).sum(3), {
      mode: "symmetric",
      perItem: true,
    }) as tf.Tensor3D;
    const signedRgb = colormap(signed, "coolwarm", { min: 0, max: 1 });
    const m = toDisplay(map.slice([0, 0, 0], [n, -1, -1]), {
      mode: "percentile",
      percentile: 99,
      perItem: true,
    }) as tf.Tensor3D;
    const heat = colormap(m, "inferno", { min: 0, max: 1 });
    let over = tf.add(tf.mul(rgb, 1 - alpha), tf.mul(heat, alpha)) as tf.Tensor4D;
    if (options.boxes || options.points) {
      const tiles = tf.unstack(over) as tf.Tensor3D[];
      over = tf.stack(tiles.map((t, i) => {
        let out = t;
        const box = options.boxes?.[i];
        if (box) out = drawBox(out, box, [0, 1, 0], 1);
        const pt = options.points?.[i];
        if (pt) {
          out = drawBox(out, { y0: pt[0] - 1, x0: pt[1] - 1, y1: pt[0] + 2, x1: pt[1] + 2 }, [
            0,
            0.8,
            1,
          ], 1);
        }
        return out;
      })) as tf.Tensor4D;
    }
    // Interleave: input, signed, map, overlay for each image.
    return tf.stack([rgb, signedRgb, heat, over], 1).reshape([n * 4, h, w, 3]) as tf.Tensor4D;
  });
  try {
    const tileLabels: string[] = [];
    for (let i = 0; i < n; i++) tileLabels.push(labels[i] ?? "", "signed", "map", "overlay");
    return grid(rows, {
      cols: 4,
      scale,
      labels: h * scale >= 20 ? tileLabels : undefined,
      title: options.title,
    });
  } finally {
    rows.dispose();
  }
}

/** What {@linkcode attributionResult} puts in the standard result. */
export interface AttributionReport {
  /** Plugin name. */
  plugin: string;
  /** Title of the result. */
  title: string;
  /** The attribution (the result takes ownership). */
  attribution: tf.Tensor4D;
  /** The class explained for each image (omit for unit projections). */
  classes?: readonly number[];
  /** Whether to draw the figure. */
  render: boolean;
  /** How the map is reduced from the attribution. @default "max-abs" */
  reduce?: MapReduction;
  /** Extra columns of the per-image table (column name -> one value per image). */
  columns?: Record<string, readonly (string | number)[]>;
  /** What the figure shows, for its caption. */
  caption?: string;
}

/**
 * The standard result of an attribution plugin: tensors `attribution` `[n, h, w,
 * c]` and `map` `[n, h, w]`, figures `method` and `classes`, a per-image table and
 * (when `render`) the figure of {@linkcode renderAttribution}.
 *
 * @param images The images explained.
 * @param report The attribution and what to say about it.
 * @returns The result.
 */
export async function attributionResult(
  images: InputImages,
  report: AttributionReport,
): Promise<Result> {
  const r = new Result(report.plugin, report.title);
  const map = attributionMap(report.attribution, report.reduce ?? "max-abs");
  r.tensor("attribution", report.attribution);
  r.tensor("map", map);
  r.figure("method", report.plugin);
  if (report.classes) r.figure("classes", report.classes.join(","));
  if (!report.render) return r;
  const n = images.x.shape[0];
  const [max, total] = tf.tidy(() => [
    map.reshape([n, -1]).max(1),
    report.attribution.reshape([n, -1]).sum(1),
  ]);
  const [maxes, totals] = await Promise.all([readOnce(max), readOnce(total)]);
  const stats = { max: maxes, total: totals };
  const extra = Object.entries(report.columns ?? {});
  const rows = Array.from({ length: n }, (_, i) => [
    images.names[i] ?? `image ${i}`,
    ...(report.classes ? [report.classes[i]] : []),
    images.labels[i] ?? -1,
    ...extra.map(([, v]) => v[i]),
    stats.max[i],
    stats.total[i],
  ]);
  r.table(
    "Per image",
    [
      "image",
      ...(report.classes ? ["class explained"] : []),
      "true label",
      ...extra.map(([k]) => k),
      "map max",
      "sum of attribution",
    ],
    rows,
  );
  const captions = images.names.map((name, i) =>
    report.classes ? `c${report.classes[i]} ${name}` : name
  );
  const picture = renderAttribution(images.pixels, report.attribution, map, captions, {
    title: report.title,
  });
  try {
    await r.addImage(
      report.plugin,
      picture,
      report.caption ??
        `${report.title}: per image the input, the signed attribution, the map and the overlay`,
    );
  } finally {
    picture.dispose();
  }
  return r;
}

/**
 * Takes the attribution out of an attribution plugin's result and frees the rest.
 *
 * @param result A result carrying tensor `attribution`.
 * @param plugin The plugin's name, for messages.
 * @returns The attribution, the caller's to dispose.
 * @throws {TypeError} when the result has no `attribution` tensor.
 */
export function takeAttribution(result: Result, plugin: string): tf.Tensor4D {
  const a = result.tensors.attribution;
  if (!a || a.rank !== 4) {
    result.dispose();
    throw new TypeError(
      `Plugin "${plugin}" is not an attribution plugin: its result has no [n, h, w, c] tensor "attribution" ` +
        "(attribution plugins take the parameters class and render and return that tensor)",
    );
  }
  delete result.tensors.attribution;
  result.dispose();
  return a as tf.Tensor4D;
}

/**
 * An attribution plugin (built-in or the user's, by name or object) seen through
 * the {@linkcode Attribution} contract: each call runs it with `ctx.runOn` on the
 * batch given, with `class` set to the targets and `render` off.
 *
 * @param ctx The running plugin's context (its Net is used).
 * @param plugin The attribution plugin or its registered name.
 * @param params Other parameters of that plugin.
 * @returns The attribution method.
 */
export function pluginAttribution(
  ctx: Context,
  plugin: AnyPlugin | string,
  params: Record<string, unknown> = {},
): Attribution {
  const name = typeof plugin === "string" ? plugin : plugin.name;
  return {
    name,
    async attribute(net, x, target) {
      if (net !== ctx.net) {
        throw new RangeError(
          `pluginAttribution("${name}") runs on the context's model; give that Net`,
        );
      }
      checkTarget(net, x, target, name);
      const pixels = net.toPixels(x) as tf.Tensor4D;
      const images = imagesFromPixels(net, pixels, [...target]);
      try {
        const result = await ctx.runOn(images, plugin, {
          ...params,
          class: [...target],
          render: false,
        });
        const a = takeAttribution(result, name);
        if (a.shape.join() !== x.shape.join()) {
          a.dispose();
          throw new RangeError(
            `Plugin "${name}" returned an attribution of shape [${a.shape}] for input [${x.shape}]`,
          );
        }
        return a;
      } finally {
        tf.dispose([images.pixels, images.x]);
      }
    },
  };
}

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

/** The `methods` and `methodParams` parameters every evaluation plugin takes. */
export type EvaluationMethodsParams = {
  /** Attribution plugins to evaluate, comma-separated. */
  methods: { type: "string"; default: string; help: string };
  /** Parameters of the methods, as JSON by method name. */
  methodParams: { type: "string"; default: string; help: string };
};

/**
 * The `methods` and `methodParams` parameter specs of an evaluation plugin.
 *
 * @param methods The methods evaluated by default, comma-separated.
 * @returns The two specs, to spread into the plugin's `params`.
 */
export function evaluationMethodsParams(methods: string): EvaluationMethodsParams {
  return {
    methods: { type: "string", default: methods, help: "attribution plugins, comma-separated" },
    methodParams: {
      type: "string",
      default: EVALUATION_METHOD_PARAMS,
      help: "parameters of the methods, JSON by method name",
    },
  };
}

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
 * Splits `count` items into consecutive chunks of at most `size`.
 *
 * @param count Number of items.
 * @param size Chunk size.
 * @returns `[start, length]` pairs.
 */
export function chunks(count: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < count; i += size) out.push([i, Math.min(size, count - i)]);
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
 * Loads held-out images that fit the model for an evaluation: the built-in
 * held-out canvases (with the digits' boxes) for a 64x64x1 model, held-out digits
 * for a 28x28x1 model, else a copy of the context's own images.
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
  const { height, width, channels } = ctx.net.input;
  if (channels === 1 && height === CANVAS_SIZE && width === CANVAS_SIZE) {
    const builtIn = fragmentIntensity === undefined || fragmentIntensity === 0.5;
    const c = builtIn
      ? await heldOutCanvases({ count })
      : await canvasSet({ part: "heldOut", count, fragmentIntensity });
    const names = c.labels.map((l, i) => `canvas ${i} (${l})`);
    return {
      images: imagesFromPixels(ctx.net, c.images, c.labels, names),
      boxes: c.boxes,
      source: `${c.labels.length} held-out canvases` +
        (builtIn ? "" : ` with clutter at ${fragmentIntensity} of the digits' brightness`),
    };
  }
  if (needBoxes) {
    throw new RangeError(
      `${what} needs images with known object boxes: it uses the built-in held-out canvases, ` +
        `which need a model taking ${CANVAS_SIZE}x${CANVAS_SIZE}x1 images (this one takes ` +
        `${height}x${width}x${channels}); run it with the built-in canvas model (--model canvas)`,
    );
  }
  if (channels === 1 && height === DIGIT_SIZE && width === DIGIT_SIZE) {
    const d = await heldOutDigits({ count });
    const names = d.labels.map((l, i) => `digit ${i} (${l})`);
    return {
      images: imagesFromPixels(ctx.net, d.images, d.labels, names),
      source: `${d.labels.length} held-out digits`,
    };
  }
  const n = Math.min(count, ctx.images.x.shape[0]);
  const pixels = ctx.images.pixels.slice([0, 0, 0, 0], [n, -1, -1, -1]);
  return {
    images: imagesFromPixels(
      ctx.net,
      pixels,
      ctx.images.labels.slice(0, n),
      ctx.images.names.slice(0, n),
    ),
    source: `${n} input images`,
  };
}

/** Frees evaluation images. */
export function disposeEvaluationImages(e: EvaluationImages): void {
  tf.dispose([e.images.pixels, e.images.x]);
}
