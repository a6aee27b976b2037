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
import { rawToTensor, readImage } from "./images/codecs.ts";
import { resize } from "./images/display.ts";

/** Options of {@linkcode loadImages}. */
export interface LoadImagesOptions {
  /** Convert colour images to grayscale for a single-channel model. @default false */
  convert?: boolean;
  /** True classes of the images, where known. @default all -1 */
  labels?: number[];
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
  const x = net.fromPixels(pixels) as tf.Tensor4D;
  try {
    net.checkInput(x);
  } catch (err) {
    tf.dispose([x, pixels]);
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
  const tiles: tf.Tensor3D[] = [];
  try {
    for (const path of paths) {
      const raw = await readImage(path);
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
