/**
 * Random crops, both in one batched warp (`warp.ts`; each image's crop is a
 * scale and shift of the pixel grid, resampled separably):
 *
 * - ResNet's scale augmentation (He et al., "Deep Residual Learning for Image
 *   Recognition", 2016, after Simonyan & Zisserman): the image is rescaled so
 *   that its short side is `L`, drawn from a range ([256, 480] for a 224 crop),
 *   and a crop of the model's size is taken at a random place.
 * - Random resized crop (Szegedy et al., "Going Deeper with Convolutions",
 *   2015; torchvision's `RandomResizedCrop`): a crop of random area (a fraction
 *   of the image's, `scale`) and aspect ratio (`ratio`, drawn log-uniformly),
 *   resized to the output size; ten tries, then the central crop.
 *
 * Resampling is bilinear with pixel centres at half-pixel offsets (like
 * torchvision's `antialias=False`).
 *
 * @module
 */
import type { tf } from "../../../core/tf.ts";
import type { Random } from "../../../core/random.ts";
import {
  type Affine,
  checkDrawnParams,
  checkRange,
  type Shape,
  type Transform,
  uniform,
} from "./transform.ts";
import { warpAffine } from "./warp.ts";

/** Output `[height, width]` of a crop, or the input's size. */
function outSize(size: readonly number[] | undefined, h: number, w: number): [number, number] {
  return size ? [size[0], size[1]] : [h, w];
}

function checkSize(what: string, size: readonly number[] | undefined): void {
  if (size && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s >= 1))) {
    throw new RangeError(
      `${what} ${JSON.stringify(size)} is invalid: give [height, width] in whole pixels`,
    );
  }
}

/**
 * The sampling map of a crop `[top, top + ch) x [left, left + cw)` (edge
 * coordinates of the input) resized to `H x W`.
 */
function cropMap(top: number, left: number, ch: number, cw: number, H: number, W: number): Affine {
  const sy = ch / H, sx = cw / W;
  return [sx, 0, left + 0.5 * sx - 0.5, 0, sy, top + 0.5 * sy - 0.5];
}

/** Parameters of a crop: per image its window in input edge coordinates. */
export type CropParams = { top: number[]; left: number[]; height: number[]; width: number[] };

function cropTransform(
  name: string,
  size: readonly number[] | undefined,
  drawOne: (rng: Random, h: number, w: number, H: number, W: number) => number[],
): Transform<CropParams> {
  const inverse = (p: CropParams, [n, h, w]: Shape): Affine[] => {
    checkDrawnParams(name, p, "top", n);
    const [H, W] = outSize(size, h, w);
    return p.top.map((t, i) => cropMap(t, p.left[i], p.height[i], p.width[i], H, W));
  };
  return {
    name,
    kind: "affine",
    outputSize: (h, w) => outSize(size, h, w),
    draw(rng, [n, h, w]) {
      const [H, W] = outSize(size, h, w);
      const p: CropParams = { top: [], left: [], height: [], width: [] };
      for (let i = 0; i < n; i++) {
        const [t, l, ch, cw] = drawOne(rng, h, w, H, W);
        p.top.push(t), p.left.push(l), p.height.push(ch), p.width.push(cw);
      }
      return p;
    },
    inverse,
    apply: (x: tf.Tensor4D, p) =>
      warpAffine(x, inverse(p, x.shape), outSize(size, x.shape[1], x.shape[2])),
  };
}

/** Options of {@linkcode scaleAugmentation}. */
export interface ScaleAugmentationOptions {
  /**
   * Range of the short side `L` (whole pixels) the image is rescaled to before
   * the crop. @default ResNet's [256, 480] relative to a 224 crop: [256/224, 480/224] x the crop's long side
   */
  shortSide?: readonly [number, number];
  /** Crop (output) `[height, width]`. @default the input's size */
  size?: readonly [number, number];
}

/**
 * ResNet's scale augmentation: rescale to a random short side `L`, take a
 * random crop of the output size.
 *
 * @param options The range of `L` and the crop size.
 * @returns The transform.
 * @throws {RangeError} for a range below the crop size or a bad size.
 */
export function scaleAugmentation(options: ScaleAugmentationOptions = {}): Transform<CropParams> {
  checkSize("scaleAugmentation: size", options.size);
  if (options.shortSide) checkRange("scaleAugmentation: shortSide", options.shortSide, 1);
  return cropTransform("scale augmentation", options.size, (rng, h, w, H, W) => {
    const [lo, hi] = options.shortSide ??
      [Math.round(Math.max(H, W) * 256 / 224), Math.round(Math.max(H, W) * 480 / 224)];
    if (lo < Math.max(H, W)) {
      throw new RangeError(
        `scaleAugmentation: shortSide starts at ${lo}, below the ${H}x${W} crop; give a range from ${
          Math.max(H, W)
        } up`,
      );
    }
    const L = lo + Math.floor(rng.next() * (hi - lo + 1));
    const s = L / Math.min(h, w);
    // The crop in rescaled pixels is H x W; in input pixels it is that over s.
    const top = Math.floor(rng.next() * Math.max(1, Math.round(h * s) - H + 1));
    const left = Math.floor(rng.next() * Math.max(1, Math.round(w * s) - W + 1));
    return [top / s, left / s, H / s, W / s];
  });
}

/** Options of {@linkcode randomResizedCrop}. */
export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image's. @default [0.08, 1] */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width over height), drawn log-uniformly. @default [3/4, 4/3] */
  ratio?: readonly [number, number];
  /** Output `[height, width]`. @default the input's size */
  size?: readonly [number, number];
}

/**
 * Random resized crop (torchvision's algorithm: ten tries at a random area
 * and aspect, then the central crop of the nearest allowed aspect).
 *
 * @param options Area and aspect ranges, output size.
 * @returns The transform.
 * @throws {RangeError} for ranges out of bounds.
 */
export function randomResizedCrop(options: RandomResizedCropOptions = {}): Transform<CropParams> {
  const scale = checkRange("randomResizedCrop: scale", options.scale ?? [0.08, 1], 1e-6, 1);
  const ratio = checkRange("randomResizedCrop: ratio", options.ratio ?? [3 / 4, 4 / 3], 1e-6);
  checkSize("randomResizedCrop: size", options.size);
  const [lr0, lr1] = [Math.log(ratio[0]), Math.log(ratio[1])];
  return cropTransform("random resized crop", options.size, (rng, h, w) => {
    const area = h * w;
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * uniform(rng, scale[0], scale[1]);
      const aspect = Math.exp(uniform(rng, lr0, lr1));
      const cw = Math.round(Math.sqrt(target * aspect));
      const ch = Math.round(Math.sqrt(target / aspect));
      if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
        return [
          Math.floor(rng.next() * (h - ch + 1)),
          Math.floor(rng.next() * (w - cw + 1)),
          ch,
          cw,
        ];
      }
    }
    const r = w / h;
    const [ch, cw] = r < ratio[0]
      ? [Math.round(w / ratio[0]), w]
      : r > ratio[1]
      ? [h, Math.round(h * ratio[1])]
      : [h, w];
    return [Math.floor((h - ch) / 2), Math.floor((w - cw) / 2), ch, cw];
  });
}
