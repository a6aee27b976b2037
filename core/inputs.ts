/**
 * Input images for plugins: image files decoded and fitted to the model's input
 * contract, or tensors the caller already has. A colour image given to a
 * single-channel model is refused unless conversion is asked for; a grayscale
 * image given to an RGB model is replicated across channels.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { Net } from "./net.ts";
import type { InputImages } from "./plugin.ts";
import { DEFAULT_MAX_PIXELS, rawToTensor, readImage } from "./images/codecs.ts";
import { resize } from "./images/display.ts";

/** Options of {@linkcode loadImages}. */
export interface LoadImagesOptions {
  /** Convert colour images to grayscale for a single-channel model. @default false */
  convert?: boolean;
  /** True classes of the images, where known. @default all -1 */
  labels?: number[];
  /**
   * Refuse images with more pixels than this, before decoding them.
   * @default {DEFAULT_MAX_PIXELS}
   */
  maxPixels?: number;
  /**
   * Receives warnings, such as an image shrunk by more than 8x to the model's
   * input size (its details are then mostly lost).
   * @default print `warning: ...` on stderr
   */
  onWarning?: (message: string) => void;
}

/** Shrinking an image by more than this factor (per side) gets a warning. */
export const SHRINK_WARNING = 8;

/**
 * Checks true classes for `n` images of `net`: one per image, each a whole
 * number from 0 to the model's last class, or -1 for unknown.
 *
 * @param net The model.
 * @param labels The classes.
 * @param n How many images there are.
 * @throws {RangeError} naming the bad label and the valid range.
 */
export function checkLabels(net: Net, labels: readonly number[], n: number): void {
  if (!Array.isArray(labels)) {
    throw new RangeError(`Labels must be an array of class indices, got ${String(labels)}`);
  }
  if (labels.length !== n) {
    throw new RangeError(
      `${labels.length} label${labels.length === 1 ? "" : "s"} given for ${n} image${
        n === 1 ? "" : "s"
      }: give one label (--label) per input image, in order`,
    );
  }
  const classes = net.numClasses;
  for (const l of labels) {
    if (l === -1) continue;
    if (typeof l !== "number" || !Number.isInteger(l) || l < 0 || (classes > 0 && l >= classes)) {
      throw new RangeError(
        `Label ${String(l)} is not a class of this model: give a whole number from 0 to ${
          classes - 1
        } (the model has ${classes} classes), or -1 for unknown`,
      );
    }
  }
}

/**
 * Wraps display pixels `[n, h, w, c]` in [0, 1] as plugin input. Takes ownership
 * of `pixels`.
 *
 * @param net The model.
 * @param pixels Images at the model's input size.
 * @param labels True classes (-1 where unknown).
 * @param names Names for captions.
 * @returns The input images.
 */
export function imagesFromPixels(
  net: Net,
  pixels: tf.Tensor4D,
  labels?: number[],
  names?: string[],
): InputImages {
  const n = pixels.shape[0];
  let x: tf.Tensor4D | undefined;
  try {
    if (labels) checkLabels(net, labels, n);
    if (names && names.length !== n) {
      throw new RangeError(`${names.length} names given for ${n} images: give one per image`);
    }
    if (pixels.dtype !== "float32") {
      throw new RangeError(`Pixels must be float32 in [0, 1], got dtype ${pixels.dtype}`);
    }
    // One read of a boolean: NaN or infinite pixels give NaN maps and scores later.
    // WebGPU cannot read synchronously; there the check is left out.
    const bad = tf.getBackend() !== "webgpu" &&
      tf.tidy(() => tf.logicalNot(tf.isFinite(pixels)).any().dataSync()[0]);
    if (bad) {
      throw new RangeError(
        "The images hold NaN or infinite pixel values: give finite values in [0, 1]",
      );
    }
    x = net.fromPixels(pixels) as tf.Tensor4D;
    net.checkInput(x);
  } catch (err) {
    tf.dispose(x ? [x, pixels] : [pixels]);
    throw err;
  }
  return {
    pixels,
    x,
    labels: labels ?? Array(n).fill(-1),
    names: names ?? Array.from({ length: n }, (_, i) => `image ${i}`),
  };
}

/** Frees the tensors of input images. */
export function disposeImages(images: InputImages): void {
  tf.dispose([images.pixels, images.x]);
}

/**
 * Reads image files (PNG or JPEG) as input for `net`: resized to its input size
 * (bilinear), converted to its channel count.
 *
 * @param net The model.
 * @param paths Image files.
 * @param options Conversion and labels.
 * @returns The input images; the caller frees them with {@linkcode disposeImages}.
 * @throws {RangeError} for a colour image and a single-channel model without `convert`.
 */
export async function loadImages(
  net: Net,
  paths: readonly string[],
  options: LoadImagesOptions = {},
): Promise<InputImages> {
  if (paths.length === 0) throw new RangeError("No input images given: pass --input <png|jpg>");
  const { height, width, channels } = net.input;
  if (options.labels) checkLabels(net, options.labels, paths.length);
  const warn = options.onWarning ?? ((m: string) => console.error(`warning: ${m}`));
  const tiles: tf.Tensor3D[] = [];
  try {
    for (const path of paths) {
      const raw = await readImage(path, { maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS });
      const shrink = Math.max(raw.width / width, raw.height / height);
      if (shrink > SHRINK_WARNING) {
        warn(
          `image "${path}" (${raw.width}x${raw.height}) is shrunk ${
            Math.round(shrink)
          }x to the model's ${width}x${height} input: most of its detail is lost; ` +
            "crop it to the part of interest first",
        );
      }
      let colour = false;
      for (let i = 0; i < raw.data.length; i += 4) {
        if (raw.data[i] !== raw.data[i + 1] || raw.data[i] !== raw.data[i + 2]) {
          colour = true;
          break;
        }
      }
      if (colour && channels === 1 && !options.convert) {
        throw new RangeError(
          `Image "${path}" has 3 colour channels but the model takes 1 (grayscale): ` +
            "convert it to grayscale, or pass --convert to convert it on the fly",
        );
      }
      const t = tf.tidy(() => {
        const px = rawToTensor(raw, channels === 1 ? 1 : 3);
        return raw.height === height && raw.width === width
          ? px
          : resize(px, height, width, "bilinear").clipByValue(0, 1) as tf.Tensor3D;
      });
      tiles.push(t);
    }
    const pixels = tf.stack(tiles) as tf.Tensor4D;
    return imagesFromPixels(net, pixels, options.labels, paths.map((p) => p.split("/").pop()!));
  } finally {
    tf.dispose(tiles);
  }
}
