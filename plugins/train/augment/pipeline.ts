/**
 * The augmentation pipeline: transforms composed in order, applied to a batch
 * `[n, h, w, c]` as tensor work with per-image random parameters drawn for the
 * whole batch at once from a seeded generator. Applying returns the images
 * and the parameters drawn; {@linkcode AugmentPipeline.replay} applies the
 * same parameters again exactly (to the same batch, or to its masks).
 * Consecutive affine transforms (flips, crops, scale augmentation, the random
 * affine) are composed into one map per image and resampled once, in one
 * batched kernel call. Boxes travel with the geometric steps; mixup and cutmix
 * return soft labels. `asAugment()` makes the pipeline `fit`'s `augment` hook.
 *
 * @example A seeded flip-and-crop pipeline, replayed
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { augmentPipeline } from "./pipeline.ts";
 * import { horizontalFlip } from "./flip.ts";
 * import { randomResizedCrop } from "./crop.ts";
 * const pipeline = augmentPipeline([horizontalFlip(), randomResizedCrop({ scale: [0.5, 1] })]);
 * const x = tf.randomUniform([4, 16, 16, 3], 0, 1, "float32", 1) as tf.Tensor4D;
 * const a = pipeline.apply(x, 7);
 * const b = pipeline.replay(a.params, x);
 * const same = tf.tidy(() => a.images.sub(b.images).abs().max().dataSync()[0]);
 * if (same !== 0) throw new Error("replay differs");
 * tf.dispose([x, a.images, b.images]);
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { type Random, seededRandom } from "../../../core/random.ts";
import type { Augment } from "../../../core/train/fit.ts";
import {
  type Affine,
  applyAffine,
  compose,
  type DrawnParams,
  invert,
  type Shape,
  type Transform,
} from "./transform.ts";
import { warpAffine } from "./warp.ts";
import {
  type BoxOutline,
  boxOutline,
  checkBoxes,
  type MapBoxOptions,
  moveOutline,
  outlineBox,
  type PixelBox,
} from "./boxes.ts";

/** The parameters one application drew: the batch's shape and each step's draws. */
export interface PipelineParams {
  /** `[n, height, width, channels]` of the batch they were drawn for. */
  shape: number[];
  /** One entry per transform, in order. */
  steps: { name: string; params: DrawnParams }[];
}

/** What goes with the images into {@linkcode AugmentPipeline.apply}. */
export interface AugmentInputs {
  /** Class indices (one per image) or soft labels `[n, classes]` (not disposed). */
  labels?: readonly number[] | tf.Tensor2D;
  /** Number of classes, for class indices. @default the largest index + 1 */
  classes?: number;
  /** Per image, its boxes. */
  boxes?: readonly (readonly PixelBox[])[];
  /** How boxes are re-boxed and dropped. */
  boxOptions?: MapBoxOptions;
}

/** What {@linkcode AugmentPipeline.apply} returns (the caller owns the tensors). */
export interface AugmentResult {
  /** The augmented batch. */
  images: tf.Tensor4D;
  /** The parameters drawn (JSON): give them to `replay` to do the same again. */
  params: PipelineParams;
  /** Soft labels `[n, classes]`, when labels were given. */
  labels?: tf.Tensor2D;
  /** The boxes moved with the pixels (clipped, those left outside dropped), when boxes were given. */
  boxes?: PixelBox[][];
}

/** Applies transforms in order; see the module doc. */
export class AugmentPipeline {
  /** The transforms, in order. */
  readonly transforms: readonly Transform[];

  /**
   * Creates a pipeline.
   * @param transforms The transforms, applied in order.
   * @throws {TypeError} for something that is not a transform.
   */
  constructor(transforms: readonly Transform[]) {
    for (const t of transforms) {
      if (!t || typeof t.draw !== "function" || typeof t.apply !== "function") {
        throw new TypeError(
          "An augmentation step is not a transform: give objects made by horizontalFlip(), colorJitter(), ...",
        );
      }
    }
    this.transforms = [...transforms];
  }

  /** Whether a step mixes labels (mixup, cutmix). */
  get mixesLabels(): boolean {
    return this.transforms.some((t) => t.kind === "mix");
  }

  /**
   * The output `[height, width]` for an input of that size.
   * @param height Input height.
   * @param width Input width.
   * @returns The output size.
   */
  outputSize(height: number, width: number): [number, number] {
    return this.transforms.reduce<[number, number]>((s, t) => t.outputSize?.(...s) ?? s, [
      height,
      width,
    ]);
  }

  /**
   * Draws parameters for a batch and applies them.
   *
   * @param x `[n, h, w, c]` float images (not disposed).
   * @param rng A generator, or a seed.
   * @param inputs Labels and boxes that travel with the images.
   * @returns The augmented images, the parameters drawn, and the labels and boxes.
   * @throws {RangeError} for a batch that is not 4-D float, bad boxes, or a
   *   mixing step without labels.
   */
  apply(x: tf.Tensor4D, rng: Random | number, inputs: AugmentInputs = {}): AugmentResult {
    const gen = typeof rng === "number" ? seededRandom(rng) : rng;
    checkBatch(x);
    const params: PipelineParams = { shape: [...x.shape], steps: [] };
    let shape: Shape = x.shape;
    for (const t of this.transforms) {
      params.steps.push({ name: t.name, params: t.draw(gen, shape) });
      const [h, w] = t.outputSize?.(shape[1], shape[2]) ?? [shape[1], shape[2]];
      shape = [shape[0], h, w, shape[3]];
    }
    return this.#run(x, params, inputs);
  }

  /**
   * Applies parameters drawn before (by `apply`) again.
   *
   * @param params What an earlier `apply` returned.
   * @param x A batch of the shape they were drawn for (e.g. the same batch, or
   *   masks of it with other channels).
   * @param inputs Labels and boxes.
   * @returns The same result as that `apply` gave for that batch.
   * @throws {RangeError} when the parameters are for other transforms or another batch size.
   */
  replay(params: PipelineParams, x: tf.Tensor4D, inputs: AugmentInputs = {}): AugmentResult {
    checkBatch(x);
    const names = this.transforms.map((t) => t.name);
    if (
      !params || !Array.isArray(params.steps) ||
      params.steps.map((s) => s.name).join("|") !== names.join("|")
    ) {
      throw new RangeError(
        `replay: the parameters are for the steps ${
          params?.steps?.map((s) => s.name).join(", ") ?? "(none)"
        } but this pipeline has ${names.join(", ")}; replay on the pipeline that drew them`,
      );
    }
    if (
      params.shape[0] !== x.shape[0] || params.shape[1] !== x.shape[1] ||
      params.shape[2] !== x.shape[2]
    ) {
      throw new RangeError(
        `replay: the parameters were drawn for ${params.shape.slice(0, 3).join("x")} batches ` +
          `but this one is ${x.shape.slice(0, 3).join("x")}; replay on a batch of that size`,
      );
    }
    return this.#run(x, params, inputs);
  }

  /**
   * The pipeline as `fit`'s `augment` hook: `fit(model, data, { augment: p.asAugment() })`.
   *
   * @returns The hook.
   * @throws {RangeError} for a pipeline that mixes labels (the hook carries
   *   images only) or changes the image size at the first call.
   */
  asAugment(): Augment {
    if (this.mixesLabels) {
      throw new RangeError(
        "This pipeline mixes labels (mixup or cutmix), which fit's augment hook cannot carry; " +
          "drop those steps for fit, or call pipeline.apply(x, rng, { labels }) in your own loop",
      );
    }
    return (x, rng) => {
      const [h, w] = this.outputSize(x.shape[1], x.shape[2]);
      if (h !== x.shape[1] || w !== x.shape[2]) {
        throw new RangeError(
          `The pipeline turns ${x.shape[1]}x${
            x.shape[2]
          } images into ${h}x${w}, but fit needs the ` +
            "model's input size: give the crop steps size [height, width] of the model",
        );
      }
      return this.apply(x, rng).images;
    };
  }

  #run(x: tf.Tensor4D, params: PipelineParams, inputs: AugmentInputs): AugmentResult {
    const n = x.shape[0];
    // Boxes travel as outlines (polygons), re-boxed once at the end.
    let outlines: BoxOutline[][] | undefined;
    if (inputs.boxes) {
      checkBoxes(inputs.boxes, n);
      const k = this.transforms.some((t) => t.kind === "warp")
        ? inputs.boxOptions?.pointsPerSide ?? 8
        : 1;
      outlines = inputs.boxes.map((l) => l.map((b) => boxOutline(b, k)));
    }
    if (this.mixesLabels && !inputs.labels) {
      throw new RangeError(
        "mixup and cutmix mix labels: give labels (class indices or soft labels) with the images",
      );
    }
    let labels = inputs.labels ? toSoft(inputs.labels, n, inputs.classes) : undefined;
    let cur = x;
    let shape: Shape = x.shape;
    const swap = (next: tf.Tensor4D) => {
      if (cur !== x) cur.dispose();
      cur = next;
    };
    try {
      let pending: { inverse: Affine[]; size: [number, number] } | undefined;
      const flush = () => {
        if (!pending) return;
        swap(warpAffine(cur, pending.inverse, pending.size));
        pending = undefined;
      };
      this.transforms.forEach((t, k) => {
        const p = params.steps[k].params;
        const size = t.outputSize?.(shape[1], shape[2]) ?? [shape[1], shape[2]];
        if (t.kind === "affine" && t.inverse) {
          const inv = t.inverse(p, shape);
          // Output of this step -> input of the pending steps -> the batch.
          pending = pending
            ? { inverse: inv.map((m, i) => compose(pending!.inverse[i], m)), size }
            : { inverse: inv, size };
          if (outlines) {
            outlines = outlines.map((l, i) => {
              const f = invert(inv[i]);
              return l.map((o) => moveOutline(o, (px, py) => applyAffine(f, px, py), size));
            });
          }
        } else {
          flush();
          swap(t.apply(cur, p));
          if (t.kind === "warp" && outlines && t.forward) {
            const s = shape;
            outlines = outlines.map((l, i) =>
              l.map((o) => moveOutline(o, (px, py) => t.forward!(p, s, i, px, py), size))
            );
          }
          if (t.kind === "mix" && labels && t.mixLabels) {
            const mixed = t.mixLabels(labels, p);
            labels.dispose();
            labels = mixed;
          }
        }
        shape = [n, size[0], size[1], shape[3]];
      });
      flush();
      // The caller owns what comes back, also when no step ran.
      const images = cur === x ? x.clone() : cur;
      const minSize = inputs.boxOptions?.minSize ?? 1;
      const boxes = outlines?.map((l) => l.flatMap((o) => outlineBox(o, minSize) ?? []));
      return { images, params, ...(labels ? { labels } : {}), ...(boxes ? { boxes } : {}) };
    } catch (err) {
      if (cur !== x) cur.dispose();
      labels?.dispose();
      throw err;
    }
  }
}

function checkBatch(x: tf.Tensor4D): void {
  if (!(x instanceof tf.Tensor) || x.rank !== 4 || x.dtype !== "float32") {
    throw new RangeError(
      `Augmentation takes a float32 batch [n, height, width, channels]; got ${
        x instanceof tf.Tensor ? `a ${x.dtype} tensor of shape [${x.shape.join(", ")}]` : typeof x
      }`,
    );
  }
}

function toSoft(labels: readonly number[] | tf.Tensor2D, n: number, classes?: number): tf.Tensor2D {
  if (labels instanceof tf.Tensor) {
    if (labels.rank !== 2 || labels.shape[0] !== n) {
      throw new RangeError(`Soft labels must be [${n}, classes]; got [${labels.shape.join(", ")}]`);
    }
    return labels.dtype === "float32" ? labels.clone() : labels.toFloat();
  }
  if (labels.length !== n || !labels.every((l) => Number.isInteger(l) && l >= 0)) {
    throw new RangeError(
      `Give ${n} class indices (whole numbers from 0), one per image; got ${labels.length}`,
    );
  }
  const k = classes ?? Math.max(...labels) + 1;
  if (labels.some((l) => l >= k)) throw new RangeError(`A class index is not below classes (${k})`);
  return tf.tidy(() => tf.oneHot(tf.tensor1d([...labels], "int32"), k).toFloat() as tf.Tensor2D);
}

/**
 * Composes transforms into a pipeline.
 *
 * @param transforms The transforms, in order.
 * @returns The pipeline.
 */
export function augmentPipeline(transforms: readonly Transform[]): AugmentPipeline {
  return new AugmentPipeline(transforms);
}
