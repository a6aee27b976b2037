/**
 * Occlusion augmentations: cutout (DeVries & Taylor, "Improved Regularization
 * of Convolutional Neural Networks with Cutout", 2017: a square of fixed size
 * at a uniformly drawn centre, possibly partly outside, set to a constant) and
 * random erasing (Zhong et al., "Random Erasing Data Augmentation", 2020: a
 * rectangle of random area fraction and aspect, inside the image, filled with
 * uniform noise or a constant). Both are one mask per image from broadcast
 * comparisons and one blend; boxes stay where they are.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import {
  checkDrawnParams,
  checkProbability,
  checkRange,
  drawApplied,
  type Transform,
  uniform,
} from "./transform.ts";
import { rectMasks } from "./_rects.ts";

/** Parameters of an erasing per image (a zero-size rectangle erases nothing), and the noise seed. */
export type EraseParams = {
  top: number[];
  left: number[];
  height: number[];
  width: number[];
  seed: number[];
};

function eraser(
  name: string,
  fill: number | "noise",
  range: readonly [number, number],
  draw: Transform<EraseParams>["draw"],
): Transform<EraseParams> {
  return {
    name,
    kind: "photometric",
    draw,
    apply(x, p) {
      const [n, h, w, c] = x.shape;
      checkDrawnParams(name, p, "top", n);
      return tf.tidy(() => {
        const m = rectMasks(n, h, w, p);
        const value = fill === "noise"
          ? tf.randomUniform([n, h, w, c], range[0], range[1], "float32", p.seed[0])
          : tf.scalar(fill);
        return x.mul(tf.sub(1, m)).add(m.mul(value)) as tf.Tensor4D;
      });
    },
  };
}

/** Options of {@linkcode cutout}. */
export interface CutoutOptions {
  /** Side of the square, as a fraction of the shorter image side. @default 0.5 */
  size?: number;
  /** Value the square is set to. @default 0 */
  fill?: number;
  /** Probability that an image is cut. @default 1 */
  p?: number;
}

/**
 * Cutout: a square at a random centre set to `fill`.
 *
 * @param options Size, fill value, probability.
 * @returns The transform.
 * @throws {RangeError} for a size outside (0, 1].
 */
export function cutout(options: CutoutOptions = {}): Transform<EraseParams> {
  const size = options.size ?? 0.5;
  if (!(size > 0 && size <= 1)) {
    throw new RangeError(`cutout: size ${size} is invalid: give a fraction in (0, 1]`);
  }
  const prob = checkProbability("cutout: p", options.p ?? 1);
  return eraser("cutout", options.fill ?? 0, [0, 1], (rng, [n, h, w]) => {
    const on = drawApplied(rng, n, prob);
    const s = Math.max(1, Math.round(size * Math.min(h, w)));
    const p: EraseParams = { top: [], left: [], height: [], width: [], seed: [0] };
    for (let i = 0; i < n; i++) {
      const cy = Math.floor(rng.next() * h), cx = Math.floor(rng.next() * w);
      p.top.push(cy - Math.floor(s / 2)), p.left.push(cx - Math.floor(s / 2));
      p.height.push(on[i] ? s : 0), p.width.push(on[i] ? s : 0);
    }
    return p;
  });
}

/** Options of {@linkcode randomErasing}. */
export interface RandomErasingOptions {
  /** Range of the erased area as a fraction of the image's. @default [0.02, 0.4] */
  area?: readonly [number, number];
  /** Range of the aspect ratio (height over width), drawn log-uniformly. @default [0.3, 3.33] */
  ratio?: readonly [number, number];
  /** `"noise"` (uniform in `range`) or a constant. @default "noise" */
  fill?: number | "noise";
  /** Value range of the noise. @default [0, 1] */
  range?: readonly [number, number];
  /** Probability that an image is erased. @default 0.5 */
  p?: number;
}

/**
 * Random erasing: a rectangle of random area and aspect inside the image,
 * filled with noise or a constant.
 *
 * @param options Area and aspect ranges, fill, probability.
 * @returns The transform.
 * @throws {RangeError} for ranges out of bounds.
 */
export function randomErasing(options: RandomErasingOptions = {}): Transform<EraseParams> {
  const area = checkRange("randomErasing: area", options.area ?? [0.02, 0.4], 0, 1);
  const ratio = checkRange("randomErasing: ratio", options.ratio ?? [0.3, 1 / 0.3], 1e-6);
  const range = checkRange("randomErasing: range", options.range ?? [0, 1]);
  const prob = checkProbability("randomErasing: p", options.p ?? 0.5);
  const fill = options.fill ?? "noise";
  if (fill !== "noise" && !Number.isFinite(fill)) {
    throw new RangeError(`randomErasing: fill ${fill} is invalid: give "noise" or a number`);
  }
  return eraser("random erasing", fill, range, (rng, [n, h, w]) => {
    const on = drawApplied(rng, n, prob);
    const p: EraseParams = { top: [], left: [], height: [], width: [], seed: [rng.seedForTf()] };
    for (let i = 0; i < n; i++) {
      let r = [0, 0, 0, 0];
      for (let attempt = 0; attempt < 10; attempt++) {
        const a = h * w * uniform(rng, area[0], area[1]);
        const asp = Math.exp(uniform(rng, Math.log(ratio[0]), Math.log(ratio[1])));
        const eh = Math.round(Math.sqrt(a * asp)), ew = Math.round(Math.sqrt(a / asp));
        if (eh >= 1 && ew >= 1 && eh < h && ew < w) {
          r = [
            Math.floor(rng.next() * (h - eh + 1)),
            Math.floor(rng.next() * (w - ew + 1)),
            eh,
            ew,
          ];
          break;
        }
      }
      p.top.push(r[0]), p.left.push(r[1]);
      p.height.push(on[i] ? r[2] : 0), p.width.push(on[i] ? r[3] : 0);
    }
    return p;
  });
}
