/**
 * `tta` (train): test-time augmentation by multiple crops, as AlexNet
 * (Krizhevsky et al. 2012: the four corner and the centre 224x224 patches of a
 * 256x256 image and their mirror images, ten views, softmax averaged) and ResNet
 * (He et al. 2016: the image at several scales, short side in {224, 256, 384,
 * 480, 640}) test their nets: "testing: marginalize over the noise" that the
 * training crops added.
 *
 * A view is the test image zero-padded by `pad` pixels (the shifts the model
 * saw in training), resized by a scale factor (the lecture's sizes over 224:
 * 1, 1.14, 1.71, 2.14, 2.86) and cropped to the model's size at a corner or the
 * centre, mirrored or not. Every view of every image of a batch comes out of one
 * `tf.image.cropAndResize` call: a crop box samples the resized image directly
 * (align-corners bilinear), and a box whose x1 exceeds its x2 is the mirrored
 * crop, so crop, scale and flip are one op. The views go through the model in
 * batches sized to the memory budget; their probabilities are combined by the
 * mean, the geometric mean or the maximum, and kept per view, so that the
 * report can say which views change the decision.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Net } from "../../../core/net.ts";
import { type Context, definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import { Result } from "../../../core/result.ts";
import { batchSizeFor } from "../../../core/memory_budget.ts";
import { colormap } from "../../../core/images/colormaps.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { testImages } from "./_data.ts";
import { type Mergeable, mergeTopK } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";

/** Where a crop sits in the (padded, resized) image. */
export type CropPosition = "center" | "top-left" | "top-right" | "bottom-left" | "bottom-right";

/** The five positions of the ten-crop test, the centre first. */
export const TEN_CROP_POSITIONS: readonly CropPosition[] = [
  "center",
  "top-left",
  "top-right",
  "bottom-left",
  "bottom-right",
];

/** One test-time view of an image. */
export interface TestTimeView {
  /** Size of the padded image before cropping, as a multiple of its size. */
  scale: number;
  /** Where the model-sized crop sits. */
  position: CropPosition;
  /** Mirrored left to right. */
  flip: boolean;
}

/** How views combine into one prediction. */
export type CombineRule = "mean" | "geomean" | "max";

/** The combination rules, in report order. */
export const COMBINE_RULES: readonly CombineRule[] = ["mean", "geomean", "max"];

/** Options of {@linkcode tenCropViews}. */
export interface TenCropOptions {
  /** The four corner crops besides the centre one. @default true */
  corners?: boolean;
  /** Each crop's mirror image too. @default true */
  flips?: boolean;
}

/**
 * The ten-crop views (centre and four corners, each with its mirror image) at
 * each scale, scale by scale.
 *
 * @param scales Scale factors (e.g. `[256 / 224]`, or the lecture's sizes over 224).
 * @param options Corners and flips.
 * @returns The views (10 per scale with the defaults).
 * @throws {RangeError} for a scale that is not a positive number.
 */
export function tenCropViews(
  scales: readonly number[],
  options: TenCropOptions = {},
): TestTimeView[] {
  if (scales.length === 0) throw new RangeError("Give at least one scale, e.g. 1");
  const positions = options.corners ?? true ? TEN_CROP_POSITIONS : TEN_CROP_POSITIONS.slice(0, 1);
  const flips = options.flips ?? true ? [false, true] : [false];
  const out: TestTimeView[] = [];
  for (const scale of scales) {
    if (!(scale > 0) || !Number.isFinite(scale)) {
      throw new RangeError(`Scale ${scale} is invalid: give a positive factor such as 1.14`);
    }
    for (const position of positions) for (const flip of flips) out.push({ scale, position, flip });
  }
  return out;
}

/** A view's name for tables and captions, e.g. `x1.14 top-left flip`. */
export function viewName(view: TestTimeView): string {
  return `x${Number(view.scale.toFixed(3))} ${view.position}${view.flip ? " flip" : ""}`;
}

/** Where a view's crop lies: the resized padded image's size and the crop's offset in it. */
export interface ViewWindow {
  /** Height of the padded image once resized. */
  resizedHeight: number;
  /** Width of the padded image once resized. */
  resizedWidth: number;
  /** First row of the crop in the resized image. */
  top: number;
  /** First column of the crop in the resized image. */
  left: number;
}

/**
 * The window of a view on an image of `height` x `width` padded by `pad`:
 * the padded image is resized to `round(scale * (size + 2 pad))` and cropped
 * to `height` x `width` at the view's position (the centre rounded down).
 *
 * @param view The view.
 * @param height Image (and crop) height.
 * @param width Image (and crop) width.
 * @param pad Zero padding around the image, in pixels.
 * @returns The window.
 * @throws {RangeError} when the resized image is smaller than the crop.
 */
export function viewWindow(
  view: TestTimeView,
  height: number,
  width: number,
  pad: number,
): ViewWindow {
  const rh = Math.round(view.scale * (height + 2 * pad));
  const rw = Math.round(view.scale * (width + 2 * pad));
  if (rh < height || rw < width) {
    throw new RangeError(
      `Scale ${view.scale} makes the ${height + 2 * pad}x${width + 2 * pad} padded image ` +
        `${rh}x${rw}, smaller than the ${height}x${width} crop: give scales of at least ` +
        `${(Math.max(height / (height + 2 * pad), width / (width + 2 * pad))).toFixed(3)}`,
    );
  }
  const top = view.position.startsWith("top")
    ? 0
    : view.position.startsWith("bottom")
    ? rh - height
    : Math.floor((rh - height) / 2);
  const left = view.position.endsWith("left")
    ? 0
    : view.position.endsWith("right")
    ? rw - width
    : Math.floor((rw - width) / 2);
  return { resizedHeight: rh, resizedWidth: rw, top, left };
}

/**
 * The views that differ (a view whose window and flip equal an earlier one's is
 * left out: at scale 1 without padding every position is the whole image).
 *
 * @param views Views.
 * @param height Image height.
 * @param width Image width.
 * @param pad Zero padding.
 * @returns The distinct views, in order.
 */
export function distinctViews(
  views: readonly TestTimeView[],
  height: number,
  width: number,
  pad: number,
): TestTimeView[] {
  const seen = new Set<string>();
  return views.filter((v) => {
    const w = viewWindow(v, height, width, pad);
    const key = `${w.resizedHeight} ${w.resizedWidth} ${w.top} ${w.left} ${v.flip}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The `cropAndResize` boxes of the views, in the frame of the image padded by
 * `pad` zeros and then by one copy of its edge (the edge copy makes a sample
 * that rounding puts a hair outside the image read the border pixel, not the
 * extrapolation value). Output pixel k of a view samples the padded image at
 * `(top + k) (size + 2 pad - 1) / (resized - 1)`: the padded image resized with
 * aligned corners, then cropped. A mirrored view swaps x1 and x2.
 *
 * @param views The views.
 * @param height Image height.
 * @param width Image width.
 * @param pad Zero padding.
 * @returns `[views, 4]` boxes `(y1, x1, y2, x2)`, normalized.
 */
export function viewBoxes(
  views: readonly TestTimeView[],
  height: number,
  width: number,
  pad: number,
): Float32Array {
  const hp = height + 2 * pad, wp = width + 2 * pad;
  const out = new Float32Array(4 * views.length);
  views.forEach((v, i) => {
    const w = viewWindow(v, height, width, pad);
    const ry = w.resizedHeight > 1 ? (hp - 1) / (w.resizedHeight - 1) : 0;
    const rx = w.resizedWidth > 1 ? (wp - 1) / (w.resizedWidth - 1) : 0;
    const y1 = (1 + w.top * ry) / (hp + 1), y2 = (1 + (w.top + height - 1) * ry) / (hp + 1);
    const x1 = (1 + w.left * rx) / (wp + 1), x2 = (1 + (w.left + width - 1) * rx) / (wp + 1);
    out.set([y1, v.flip ? x2 : x1, y2, v.flip ? x1 : x2], 4 * i);
  });
  return out;
}

/**
 * Every view of every image, built with one batched `cropAndResize`.
 *
 * @param x Images `[n, h, w, c]` (model input space).
 * @param views The views.
 * @param pad Zero padding in pixels. @default 0
 * @returns `[views * n, h, w, c]`, view-major (row `v n + i` is view v of image i).
 * @throws {RangeError} for a negative or fractional padding, or a scale too small.
 */
export function testTimeViews(
  x: tf.Tensor4D,
  views: readonly TestTimeView[],
  pad = 0,
): tf.Tensor4D {
  if (!Number.isInteger(pad) || pad < 0) {
    throw new RangeError(`pad ${pad} is invalid: give a whole number of pixels, 0 or more`);
  }
  if (views.length === 0) throw new RangeError("Give at least one view");
  const [n, h, w] = x.shape;
  const boxes = viewBoxes(views, h, w, pad);
  const all = new Float32Array(4 * views.length * n);
  const index = new Int32Array(views.length * n);
  for (let v = 0; v < views.length; v++) {
    for (let i = 0; i < n; i++) {
      all.set(boxes.subarray(4 * v, 4 * v + 4), 4 * (v * n + i));
      index[v * n + i] = i;
    }
  }
  return tf.tidy(() => {
    const padded = pad > 0 ? x.pad([[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
    const edged = tf.mirrorPad(padded, [[0, 0], [1, 1], [1, 1], [0, 0]], "symmetric");
    return tf.image.cropAndResize(
      edged as tf.Tensor4D,
      tf.tensor2d(all, [views.length * n, 4]),
      tf.tensor1d(index, "int32"),
      [h, w],
      "bilinear",
    );
  });
}

/**
 * Combines per-view probabilities into one prediction per image: their mean,
 * their geometric mean, or their maximum, the last two renormalized to sum to 1.
 *
 * @param perView `[views, n, classes]` probabilities.
 * @param rule How to combine.
 * @returns `[n, classes]` probabilities.
 */
export function combineViews(perView: tf.Tensor3D, rule: CombineRule): tf.Tensor2D {
  return tf.tidy(() => {
    if (rule === "mean") return perView.mean(0) as tf.Tensor2D;
    const c = rule === "max" ? perView.max(0) : perView.maximum(1e-30).log().mean(0).exp();
    return c.div(c.sum(1, true)) as tf.Tensor2D;
  });
}

/** Options of {@linkcode testTimePredict}. */
export interface TestTimeOptions {
  /** Zero padding before resizing, in pixels. @default 0 */
  pad?: number;
  /** Views per forward pass. @default the memory budget's forward batch (at most 1024) */
  batchSize?: number;
  /** Megabytes of activations per batch. @default CONVLENS_MEMORY_MB or 512 */
  memoryMB?: number;
}

/**
 * Each view's class probabilities for a batch of images.
 *
 * @param net A classifier.
 * @param x Images `[n, h, w, c]` in model input space.
 * @param views The views.
 * @param options Padding, batch size.
 * @returns `[views, n, classes]` probabilities.
 */
export function testTimePredict(
  net: Net,
  x: tf.Tensor4D,
  views: readonly TestTimeView[],
  options: TestTimeOptions = {},
): tf.Tensor3D {
  net.checkClassOutput("test-time view probabilities");
  net.checkInput(x);
  const rows = options.batchSize ??
    batchSizeFor(net, 1024, { pass: "forward", memoryMB: options.memoryMB });
  const n = x.shape[0];
  const per = Math.max(1, Math.floor(rows / views.length));
  const parts: tf.Tensor3D[] = [];
  try {
    for (let i = 0; i < n; i += per) {
      const m = Math.min(per, n - i);
      parts.push(tf.tidy(() => {
        const all = testTimeViews(x.slice([i, 0, 0, 0], [m, -1, -1, -1]), views, options.pad);
        const chunks: tf.Tensor2D[] = [];
        for (let r = 0; r < all.shape[0]; r += rows) {
          const k = Math.min(rows, all.shape[0] - r);
          chunks.push(net.probabilities(all.slice([r, 0, 0, 0], [k, -1, -1, -1])));
        }
        return tf.concat(chunks).reshape([views.length, m, net.numClasses]) as tf.Tensor3D;
      }));
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  } finally {
    if (parts.length > 1) tf.dispose(parts);
  }
}

/** The parameters of the `tta` plugin: its schema, declared once. */
export const TTA_PARAMS = {
  count: {
    type: "integer",
    default: 10_000,
    min: 1,
    help: "test images (the first of the run's data set; all of them when fewer)",
  },
  scales: {
    type: "numbers",
    default: [1] as number[],
    help: "scale factors of the padded image, e.g. 1,1.0625 (the lecture's 224,256,384,480,640 " +
      "over 224: 1,1.143,1.714,2.143,2.857)",
  },
  pad: {
    type: "integer",
    default: 2,
    min: 0,
    max: 64,
    help: "zero padding in pixels before resizing (corner crops then shift by it)",
  },
  corners: { type: "boolean", default: true, help: "the four corner crops besides the centre" },
  flips: { type: "boolean", default: true, help: "each crop's mirror image too" },
  combine: {
    type: "enum",
    choices: COMBINE_RULES,
    default: "mean",
    help: "how views combine: mean, geometric mean or max of the probabilities",
  },
  batchSize: {
    type: "integer",
    min: 1,
    help: "views per forward pass (default: the memory budget's, at most 1024)",
  },
  show: {
    type: "integer",
    default: 12,
    min: 1,
    max: 64,
    help: "images in the disagreement map (those whose views disagree most)",
  },
} as const;

/** The options of the `tta` plugin. */
export type TtaOptions = ParamValues<typeof TTA_PARAMS>;

/** Accuracy of a combination of a subset of the views, for the table. */
interface Combination {
  name: string;
  views: number[];
}

/** The subsets of views whose combinations the report compares. */
function combinations(views: readonly TestTimeView[]): Combination[] {
  const all = views.map((_, i) => i);
  const out: Combination[] = [];
  const scales = [...new Set(views.map((v) => v.scale))];
  const centre = all.filter((i) => views[i].position === "center");
  const centreFlip = centre.filter((i) => views[i].scale === scales[0]);
  if (centreFlip.length > 1) {
    out.push({ name: `centre + flip at x${scales[0]}`, views: centreFlip });
  }
  for (const s of scales) {
    const at = all.filter((i) => views[i].scale === s);
    if (scales.length > 1 && at.length > 1) out.push({ name: `all views at x${s}`, views: at });
  }
  if (scales.length > 1 && centre.length > 1) {
    out.push({ name: "centre crops (+ flips) at every scale", views: centre });
  }
  out.push({ name: "every view", views: all });
  return out;
}

/**
 * One image among those whose views disagree most with the combined decision:
 * what the disagreement map and its table show of it.
 */
export interface TtaDisagreement {
  /** The image's global index. */
  image: number;
  /** Views whose class differs from the combined one. */
  votes: number;
  /** Its true class (-1 where unknown). */
  label: number;
  /** The combined class. */
  combined: number;
  /** Each view's class. */
  viewClasses: number[];
  /** Each view's probability of the combined class (float32 values). */
  viewProbabilities: number[];
}

/**
 * The mergeable state of `tta` over a slice of the test images: integer counts
 * (labelled images, right answers of the single image, of each combination
 * under each rule and of each view alone, how often each view differs from
 * the single and the combined decision, fixed and broken decisions), the
 * `show` images whose views disagree most (ties to the lower index), and the
 * per-view probabilities of the slice's images (for the result's tensors),
 * by first index. Counts add and top lists merge exactly, whatever the split.
 */
export interface TtaState {
  /** The views' names, in order. */
  views: string[];
  /** What the images are, for captions. */
  source: string;
  /** Classes of the model. */
  classes: number;
  /** Images covered. */
  count: number;
  /** Labelled images covered. */
  labelled: number;
  /** Right answers of the image as it is. */
  singleRight: number;
  /** Right answers by `combination|rule`. */
  right: Record<string, number>;
  /** Per view, right answers of the view alone. */
  viewRight: number[];
  /** Per view, images whose class differs from the single image's. */
  offSingle: number[];
  /** Per view, images whose class differs from the combined one. */
  offCombined: number[];
  /** Wrong alone, right combined. */
  fixed: number;
  /** Right alone, wrong combined. */
  broken: number;
  /** How many of them the state keeps (`show`). */
  show: number;
  /** The images whose views disagree most (at most `show`), most first. */
  disagreement: TtaDisagreement[];
  /** Per-view probabilities `[views, count, classes]` of images `first ..`. */
  segments: { first: number; count: number; probabilities: Float32Array }[];
}

/** Disagreement order: most views against the combined class first, ties to the lower index. */
const disagreementKey = (d: TtaDisagreement): number[] => [-d.votes, d.image];

const addCounts = (a: readonly number[], b: readonly number[]): number[] =>
  a.map((v, i) => v + b[i]);

/** The state type of `tta`: counts added, disagreement lists merged, probabilities by index. */
export const TTA_STATE: Mergeable<TtaState> = {
  merge(a, b) {
    if (
      a.views.join("|") !== b.views.join("|") || a.classes !== b.classes || a.show !== b.show
    ) {
      throw new RangeError("tta: cannot merge states of other views or another model's classes");
    }
    const right: Record<string, number> = {};
    for (const k of Object.keys(a.right)) right[k] = a.right[k] + (b.right[k] ?? 0);
    return {
      ...a,
      count: a.count + b.count,
      labelled: a.labelled + b.labelled,
      singleRight: a.singleRight + b.singleRight,
      right,
      viewRight: addCounts(a.viewRight, b.viewRight),
      offSingle: addCounts(a.offSingle, b.offSingle),
      offCombined: addCounts(a.offCombined, b.offCombined),
      fixed: a.fixed + b.fixed,
      broken: a.broken + b.broken,
      disagreement: mergeTopK(a.disagreement, b.disagreement, a.show, disagreementKey),
      segments: [...a.segments, ...b.segments].sort((x, y) => x.first - y.first),
    };
  },
  encode(s) {
    const { segments, ...rest } = s;
    const arrays: Record<string, Float32Array> = {};
    for (const g of segments) arrays[`probabilities@${g.first}`] = g.probabilities;
    return {
      json: { ...rest, segments: segments.map((g) => ({ first: g.first, count: g.count })) },
      arrays,
    };
  },
  decode({ json, arrays }) {
    const j = json as Omit<TtaState, "segments"> & {
      segments: { first: number; count: number }[];
    };
    if (!j || !Array.isArray(j.views) || !Array.isArray(j.segments) || !j.right) {
      throw new RangeError("tta: the state file holds no test-time augmentation counts");
    }
    return {
      ...j,
      segments: j.segments.map((g) => {
        const probabilities = arrays[`probabilities@${g.first}`];
        if (!(probabilities instanceof Float32Array)) {
          throw new RangeError(
            `tta: the state file lacks the probabilities of images ${g.first}..`,
          );
        }
        return { ...g, probabilities };
      }),
    };
  },
};

/** The views of the parameters on this model. */
function viewsOf(net: Net, p: TtaOptions): TestTimeView[] {
  net.checkClassOutput("test-time augmentation");
  const { height, width } = net.input;
  return distinctViews(
    tenCropViews(p.scales, { corners: p.corners, flips: p.flips }),
    height,
    width,
    p.pad,
  );
}

/** The counts, disagreement list and probabilities of shard `shard` of the test images. */
async function scan(
  ctx: Context,
  p: TtaOptions,
  shard: ShardSpec,
): Promise<ScanResult<TtaState>> {
  const { net } = ctx;
  const views = viewsOf(net, p);
  const data = await testImages(ctx, p.count);
  const V = views.length, n = data.count, k = net.numClasses;
  const [lo, hi] = shardRange(n, shard);
  const rows = p.batchSize ??
    batchSizeFor(net, 1024, { pass: "forward", memoryMB: ctx.memoryMB });
  const perBatch = Math.max(1, Math.floor(rows / V));
  const combos = combinations(views);
  const s: TtaState = {
    views: views.map(viewName),
    source: data.source,
    classes: k,
    count: hi - lo,
    labelled: 0,
    singleRight: 0,
    right: Object.fromEntries(
      combos.flatMap((c) => COMBINE_RULES.map((rule) => [`${c.name}|${rule}`, 0])),
    ),
    viewRight: views.map(() => 0),
    offSingle: views.map(() => 0),
    offCombined: views.map(() => 0),
    fixed: 0,
    broken: 0,
    show: p.show,
    disagreement: [],
    segments: [],
  };
  const all = new Float32Array(V * (hi - lo) * k);
  for await (const b of data.batches(perBatch, lo, hi)) {
    const m = b.labels.length, at = b.offset - lo;
    let perView: tf.Tensor3D;
    try {
      perView = testTimePredict(net, b.x, views, { pad: p.pad, batchSize: rows });
    } catch (err) {
      b.x.dispose();
      throw err;
    }
    const [one, each, ...combined] = tf.tidy(() => [
      net.probabilities(b.x).argMax(1),
      perView.argMax(2),
      ...combos.flatMap((c) =>
        COMBINE_RULES.map((rule) =>
          combineViews(
            tf.gather(perView, tf.tensor1d(c.views, "int32")) as tf.Tensor3D,
            rule,
          ).argMax(1)
        )
      ),
    ]);
    b.x.dispose();
    const probs = await perView.data() as Float32Array;
    perView.dispose();
    for (let v = 0; v < V; v++) {
      all.set(probs.subarray(v * m * k, (v + 1) * m * k), (v * (hi - lo) + at) * k);
    }
    const single = await one.data() as Int32Array;
    const each_ = await each.data() as Int32Array; // [V, m]
    let chosen: Int32Array | undefined;
    for (const [j, t] of combined.entries()) {
      const c = combos[Math.floor(j / COMBINE_RULES.length)];
      const rule = COMBINE_RULES[j % COMBINE_RULES.length];
      const pred = await t.data() as Int32Array;
      if (c.name === "every view" && rule === p.combine) chosen = pred;
      s.right[`${c.name}|${rule}`] += pred.reduce((a, q, i) => a + (q === b.labels[i] ? 1 : 0), 0);
    }
    tf.dispose([one, each, ...combined]);
    const candidates: TtaDisagreement[] = [];
    for (let i = 0; i < m; i++) {
      const label = b.labels[i], combinedClass = chosen![i];
      if (label >= 0) {
        s.labelled++;
        if (single[i] === label) s.singleRight++;
        if (single[i] !== label && combinedClass === label) s.fixed++;
        if (single[i] === label && combinedClass !== label) s.broken++;
      }
      let votes = 0;
      for (let v = 0; v < V; v++) {
        const q = each_[v * m + i];
        if (label >= 0 && q === label) s.viewRight[v]++;
        if (q !== single[i]) s.offSingle[v]++;
        if (q !== combinedClass) {
          s.offCombined[v]++;
          votes++;
        }
      }
      candidates.push({
        image: b.offset + i,
        votes,
        label,
        combined: combinedClass,
        viewClasses: views.map((_, v) => each_[v * m + i]),
        viewProbabilities: views.map((_, v) => probs[(v * m + i) * k + combinedClass]),
      });
    }
    s.disagreement = mergeTopK(s.disagreement, candidates, p.show, disagreementKey);
    ctx.progress(at + m, hi - lo);
  }
  if (hi > lo) s.segments.push({ first: lo, count: hi - lo, probabilities: all });
  return { value: s, data: { name: data.source, size: n } };
}

/** The figures, tables, plot, tensors and disagreement map of the merged counts. */
async function finish(ctx: Context, p: TtaOptions, s: TtaState): Promise<Result> {
  const { net } = ctx;
  const views = viewsOf(net, p);
  const V = views.length, n = s.count, k = s.classes;
  const combos = combinations(views);
  if (s.labelled === 0) {
    throw new RangeError(
      "tta measures accuracy and needs labelled images: give --data (a named data set or a " +
        "folder with one subfolder per class), or --label with --input",
    );
  }
  const acc = (r: number) => r / s.labelled;
  const accuracyTta = acc(s.right[`every view|${p.combine}`]);
  const r = new Result("tta", `Test-time augmentation: ${V} views of ${s.source}`);
  r.figure("accuracySingle", acc(s.singleRight));
  r.figure("accuracyTta", accuracyTta);
  r.figure("views", V);
  r.figure("combine", p.combine);
  r.figure("count", n);
  for (const rule of COMBINE_RULES) {
    r.figure(
      `accuracy${rule[0].toUpperCase()}${rule.slice(1)}`,
      acc(s.right[`every view|${rule}`]),
    );
  }
  r.figure("fixed", s.fixed);
  r.figure("broken", s.broken);
  r.table(
    "Accuracy of each combination of views (the single row is the image as it is)",
    ["views", "count", "mean", "geomean", "max"],
    [
      ["single (the image as it is)", 1, ...COMBINE_RULES.map(() => acc(s.singleRight))],
      ...combos.map((c) => [
        c.name,
        c.views.length,
        ...COMBINE_RULES.map((rule) => acc(s.right[`${c.name}|${rule}`])),
      ]),
    ],
  );
  // Which views change the decision: each view alone against the single and combined ones.
  const viewRows = views.map((v, j) => [
    viewName(v),
    acc(s.viewRight[j]),
    s.offSingle[j] / n,
    s.offCombined[j] / n,
  ]);
  r.table(
    "Which views change the decision: each view alone, and how often its class differs from " +
      "the single image's and from the combined one's",
    ["view", "accuracy", "differs from single", `differs from ${p.combine}`],
    viewRows,
  );
  r.addPlot(
    "view-accuracy",
    linePlot([
      {
        name: "view alone",
        x: viewRows.map((row) => row[0] as string),
        y: viewRows.map((row) => row[1] as number),
        mark: "bar",
      },
      {
        name: "single image",
        x: viewRows.map((row) => row[0] as string),
        y: viewRows.map(() => acc(s.singleRight)),
      },
      {
        name: `${V} views, ${p.combine}`,
        x: viewRows.map((row) => row[0] as string),
        y: viewRows.map(() => accuracyTta),
        dashed: true,
      },
    ], {
      xLabel: "view",
      yLabel: "test accuracy",
      title: "Accuracy of each view and of the combination",
    }),
    "Each view alone against the image as it is and the combined prediction",
  );
  // [views, n, classes] from segments of [views, count, classes], by first index.
  const all = new Float32Array(V * n * k);
  let at = 0;
  for (const g of s.segments) {
    for (let v = 0; v < V; v++) {
      all.set(
        g.probabilities.subarray(v * g.count * k, (v + 1) * g.count * k),
        (v * n + at) * k,
      );
    }
    at += g.count;
  }
  const perViewAll = tf.tensor3d(all, [V, n, k]);
  r.tensor("viewProbabilities", perViewAll);
  r.tensor("probabilities", combineViews(perViewAll, p.combine));
  await disagreementMap(r, s.disagreement, views, net);
  r.note(
    `${V} distinct views (ten crops at scales ${p.scales.join(", ")} of the image padded by ` +
      `${p.pad} pixels) of ${s.source}; single: the image as it is.`,
  );
  return r;
}

/** `tta` as a sharded job: each shard counts its slice's right answers; counts add. */
export const ttaJob: ShardedJob<typeof TTA_PARAMS, TtaState> = {
  get plugin() {
    return tta;
  },
  state: TTA_STATE,
  settings: ["batchSize"],
  async dataOf(ctx, p) {
    viewsOf(ctx.net, p);
    const data = await testImages(ctx, p.count);
    return { name: data.source, size: data.count };
  },
  scan,
  finish,
};

/** The `tta` plugin. */
export const tta: Plugin<typeof TTA_PARAMS> = definePlugin({
  name: "tta",
  family: "train",
  summary: "Test-time augmentation: 10 crops at several scales, combined (AlexNet, ResNet)",
  params: TTA_PARAMS,
  needsImages: false,
  // All 10,000 test images take a while on two cores; the demo measures 2,000.
  demo: [{ count: 1000 }],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});

/**
 * The disagreement map: for the images whose views disagree most with the
 * combined decision, each view's probability of the combined class (rows:
 * views, columns: images), plus the table of their decisions.
 */
async function disagreementMap(
  r: Result,
  shown: readonly TtaDisagreement[],
  views: readonly TestTimeView[],
  net: Net,
): Promise<void> {
  const V = views.length;
  // [V, m]: view v's probability of image j's combined class.
  const probs = tf.tensor2d(
    Float32Array.from(
      { length: V * shown.length },
      (_, q) => shown[q % shown.length].viewProbabilities[Math.floor(q / shown.length)],
    ),
    [V, shown.length],
  );
  // Square cells, the map about 240 pixels on its longer side.
  const cell = Math.max(4, Math.floor(240 / Math.max(V, shown.length)));
  const heat = tf.tidy(() => {
    const c = colormap(probs, "viridis", { min: 0, max: 1 });
    const up = tf.image.resizeNearestNeighbor(c, [V * cell, shown.length * cell]);
    return up as tf.Tensor3D;
  });
  try {
    await r.addImage(
      "disagreement",
      heat,
      `Rows: the ${V} views (in the table's order); columns: the ${shown.length} images whose ` +
        "views disagree most; colour: the view's probability of the combined class (0 dark, 1 yellow)",
      {
        colorbar: {
          min: 0,
          max: 1,
          colormap: "viridis",
          label: "probability of the combined class",
        },
      },
    );
  } finally {
    tf.dispose([probs, heat]);
  }
  r.table(
    "The images whose views disagree most",
    ["image", "label", "combined class", "views against it", "classes the views give"],
    shown.map((d) => {
      const classes = [...new Set(d.viewClasses.map((c) => net.labels[c]))];
      return [
        d.image,
        d.label >= 0 ? net.labels[d.label] : "?",
        net.labels[d.combined],
        d.votes,
        classes.join(", "),
      ];
    }),
  );
}
