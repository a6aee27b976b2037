/**
 * Images for convlens: PNG/JPEG decoding and encoding, tensor <-> image
 * conversion, resizing, display normalization, colormaps, heatmap overlays,
 * labelled grids of tiles and boxes. This module knows nothing about any
 * visualization technique; plugins build their figures from it.
 *
 * Conventions: image tensors are float32 `[height, width, channels]` (or
 * `[batch, height, width, channels]`) with values in [0, 1] and 1 (gray) or 3
 * (RGB) channels. Every function that returns a tensor leaves
 * `tf.memory().numTensors` unchanged apart from the tensor it returns; inputs are
 * never disposed.
 *
 * @module
 */
// imagescript 1.3.1's codecs, imported from their own files: the package's main
// module loads a native addon at import time, and its type declarations do not
// parse under `deno doc`. PNG decoding and JPEG decoding are WebAssembly, PNG
// encoding is plain JS; only JPEG encoding needs the native addon (loaded lazily).
import pngCodec from "imagescript/png/node.js";
import pngWasm from "imagescript/wasm/node/png.js";
import jpegWasm from "imagescript/wasm/node/jpeg.js";
import { tf } from "./tf.ts";
import { writeFileAtomic } from "./files.ts";
import { GLYPH_HEIGHT, GLYPH_SPACING, GLYPH_WIDTH, renderText } from "./_font.ts";

/** An 8-bit RGBA image in memory, row-major, 4 bytes per pixel. */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, `width * height * 4` long. */
  data: Uint8ClampedArray;
}

/** An RGB colour with components in [0, 1]. */
export type Rgb = readonly [number, number, number];

/** A rectangle in pixel coordinates: rows `y0 <= y < y1`, columns `x0 <= x < x1`. */
export interface Box {
  /** First row (inclusive). */
  y0: number;
  /** First column (inclusive). */
  x0: number;
  /** End row (exclusive). */
  y1: number;
  /** End column (exclusive). */
  x1: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  if (bytes.length < prefix.length) return false;
  return prefix.every((b, i) => bytes[i] === b);
}

/** What a file that is neither PNG nor JPEG looks like, for error messages. */
function describeUnknown(bytes: Uint8Array): string {
  if (bytes.length === 0) return "the file is empty";
  const ascii = new TextDecoder("latin1").decode(bytes.subarray(0, 16));
  if (ascii.startsWith("GIF8")) return "it is a GIF";
  if (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") return "it is a WebP";
  if (ascii.startsWith("II*\0") || ascii.startsWith("MM\0*")) return "it is a TIFF";
  if (ascii.startsWith("BM")) return "it is a BMP";
  if (ascii.slice(4, 8) === "ftyp") return "it is an HEIC/AVIF or video container";
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0"));
  return `unknown file signature ${head.join(" ")}`;
}

function decodeError(source: string, reason: string): Error {
  return new Error(
    `Cannot decode image "${source}": not a valid PNG or JPEG (${reason}). ` +
      "Give a PNG or JPEG file.",
  );
}

/**
 * Decodes a PNG (RGB, RGBA, gray, gray+alpha or palette) or JPEG file into RGBA bytes.
 *
 * @param bytes The file's contents.
 * @param source Where the bytes came from (a path or URL), named in error messages.
 * @returns The decoded image.
 * @throws {Error} When the bytes are empty, of another format, corrupt or
 *   truncated; the message names `source` and says what to give instead.
 */
export async function decodeImage(bytes: Uint8Array, source: string): Promise<RawImage> {
  let kind: "PNG" | "JPEG";
  if (startsWith(bytes, PNG_SIGNATURE)) kind = "PNG";
  else if (startsWith(bytes, [0xff, 0xd8, 0xff])) kind = "JPEG";
  else throw decodeError(source, describeUnknown(bytes));
  let decoded: { width: number; height: number; rgba: Uint8Array };
  try {
    if (kind === "PNG") {
      const out = (await pngWasm.init()).decode(bytes);
      decoded = { width: out.width, height: out.height, rgba: out.framebuffer };
    } else {
      const out = (await jpegWasm.init()).load(bytes);
      decoded = { width: out.width, height: out.height, rgba: out.buffer };
    }
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw decodeError(source, `the ${kind} data is corrupt or truncated: ${detail}`);
  }
  const { width, height, rgba } = decoded;
  if (!(width > 0 && height > 0) || !(rgba?.length >= width * height * 4)) {
    throw decodeError(source, `the ${kind} data holds no complete image`);
  }
  return { width, height, data: new Uint8ClampedArray(rgba.subarray(0, width * height * 4)) };
}

/**
 * Reads and decodes a PNG or JPEG file.
 *
 * @param path The file's path.
 * @returns The decoded image.
 * @throws {Error} When the file is missing or unreadable (the message names the
 *   path and what to check) or cannot be decoded (see {@link decodeImage}).
 */
export async function readImage(path: string): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot read image "${path}": no such file. Check the path ` +
          `(relative paths start from ${Deno.cwd()}).`,
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new Error(`Cannot read image "${path}": it is a folder. Give a PNG or JPEG file.`);
    }
    const detail = e instanceof Error ? e.message : String(e);
    throw new Error(
      `Cannot read image "${path}": ${detail}. Check that the file exists and is readable.`,
    );
  }
  return await decodeImage(bytes, path);
}

function checkRaw(img: RawImage, what: string): void {
  const { width, height, data } = img;
  if (
    !Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0
  ) {
    throw new RangeError(
      `${what}: image size must be positive integers, got ${width}x${height}.`,
    );
  }
  if (!(data instanceof Uint8ClampedArray) || data.length !== width * height * 4) {
    throw new RangeError(
      `${what}: a ${width}x${height} RawImage needs ${width * height * 4} RGBA bytes ` +
        `in a Uint8ClampedArray, got ${data?.length ?? "none"}.`,
    );
  }
}

function checkImageTensor(t: tf.Tensor, what: string, allowAlpha = false): void {
  const ok = allowAlpha ? [1, 3, 4] : [1, 3];
  if (!(t instanceof tf.Tensor) || t.isDisposed) {
    throw new TypeError(`${what}: expected a live tf.Tensor, got ${describeValue(t)}.`);
  }
  const shape = t.shape as number[];
  if (t.rank !== 3 || !ok.includes(shape[2]) || shape[0] < 1 || shape[1] < 1) {
    throw new RangeError(
      `${what}: expected an image tensor of shape [height, width, ${ok.join(" or ")}], ` +
        `got shape [${t.shape.join(", ")}]. Squeeze a batch dimension with ` +
        "t.squeeze([0]) or pick one channel with t.slice().",
    );
  }
}

function describeValue(v: unknown): string {
  if (v instanceof tf.Tensor) return "a disposed tensor";
  if (v === null) return "null";
  return typeof v;
}

/**
 * Converts an 8-bit image to a float32 tensor with values in [0, 1]. Alpha is ignored.
 *
 * @param img The image.
 * @param channels 3 for RGB; 1 for gray by luminance `0.299 R + 0.587 G + 0.114 B`.
 * @returns A `[height, width, channels]` float32 tensor.
 * @throws {RangeError} When `img` is malformed or `channels` is not 1 or 3.
 */
export function rawToTensor(img: RawImage, channels: 1 | 3): tf.Tensor3D {
  checkRaw(img, "rawToTensor");
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`rawToTensor: channels must be 1 or 3, got ${channels}.`);
  }
  const n = img.width * img.height;
  const src = img.data;
  const out = new Float32Array(n * channels);
  if (channels === 3) {
    for (let i = 0; i < n; i++) {
      out[i * 3] = src[i * 4] / 255;
      out[i * 3 + 1] = src[i * 4 + 1] / 255;
      out[i * 3 + 2] = src[i * 4 + 2] / 255;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const r = src[i * 4], g = src[i * 4 + 1], b = src[i * 4 + 2];
      // Exact for gray pixels (r = g = b), where the weighted sum could round off.
      out[i] = (r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
  }
  return tf.tensor3d(out, [img.height, img.width, channels], "float32");
}

/**
 * Converts an image tensor with values in [0, 1] to 8-bit RGBA. Values are
 * clamped to [0, 1], scaled by 255 and rounded; NaN becomes 0. Gray is copied to
 * R, G and B; alpha is 255 unless the tensor has a 4th (alpha) channel.
 *
 * @param t A `[height, width, 1 | 3 | 4]` tensor.
 * @returns The 8-bit image.
 * @throws {RangeError} When `t` is not of that shape.
 */
export async function tensorToRaw(t: tf.Tensor3D): Promise<RawImage> {
  checkImageTensor(t, "tensorToRaw", true);
  const [height, width, c] = t.shape;
  const values = await t.data();
  const n = width * height;
  const data = new Uint8ClampedArray(n * 4);
  const byte = (v: number): number => (v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0);
  for (let i = 0; i < n; i++) {
    if (c === 1) {
      const v = byte(values[i]);
      data[i * 4] = v;
      data[i * 4 + 1] = v;
      data[i * 4 + 2] = v;
      data[i * 4 + 3] = 255;
    } else {
      data[i * 4] = byte(values[i * c]);
      data[i * 4 + 1] = byte(values[i * c + 1]);
      data[i * 4 + 2] = byte(values[i * c + 2]);
      data[i * 4 + 3] = c === 4 ? byte(values[i * c + 3]) : 255;
    }
  }
  return { width, height, data };
}

/** PNG compression level (zlib 0..9) used by {@link encodePng}. */
const PNG_LEVEL = 6;

/**
 * Encodes an image as an 8-bit PNG. The file is gray when every pixel is gray,
 * RGB when every pixel is opaque, else RGBA, and has no timestamp or other
 * metadata, so the same image always gives the same bytes.
 *
 * @param img The image.
 * @returns The PNG file's bytes.
 * @throws {RangeError} When `img` is malformed.
 */
export function encodePng(img: RawImage): Promise<Uint8Array> {
  checkRaw(img, "encodePng");
  const src = img.data;
  const n = img.width * img.height;
  let opaque = true, gray = true;
  for (let i = 0; i < n * 4 && (opaque || gray); i += 4) {
    if (src[i + 3] !== 255) opaque = false;
    if (src[i] !== src[i + 1] || src[i] !== src[i + 2]) gray = false;
  }
  const channels = opaque ? (gray ? 1 : 3) : 4;
  let data: Uint8Array;
  if (channels === 4) data = new Uint8Array(src.buffer, src.byteOffset, src.length);
  else {
    data = new Uint8Array(n * channels);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < channels; c++) data[i * channels + c] = src[i * 4 + c];
    }
  }
  const bytes: Uint8Array = pngCodec.encode(data, {
    width: img.width,
    height: img.height,
    channels,
    level: PNG_LEVEL,
  });
  return Promise.resolve(bytes);
}

/**
 * Encodes an image as JPEG (alpha is dropped). This uses imagescript's native
 * codec (x64/arm64 Linux and macOS, x64 Windows), loaded on first use, so it
 * needs `--allow-ffi` where permissions are restricted.
 *
 * @param img The image.
 * @param quality 1 (smallest) to 100 (best).
 * @returns The JPEG file's bytes.
 * @throws {RangeError} When `img` is malformed or `quality` is out of range.
 * @throws {Error} When the native JPEG codec cannot load on this platform.
 */
export async function encodeJpeg(img: RawImage, quality = 90): Promise<Uint8Array> {
  checkRaw(img, "encodeJpeg");
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RangeError(`encodeJpeg: quality must be an integer 1..100, got ${quality}.`);
  }
  let codecs;
  try {
    codecs = (await import("imagescript/codecs/node/index.js")).default;
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new Error(
      `Cannot encode JPEG: imagescript's native JPEG codec did not load (${detail}). ` +
        "Allow it with --allow-ffi, or write PNG instead (encodePng / writePng).",
    );
  }
  const bytes: Uint8Array = await codecs.jpeg.encode_async(img.data, {
    quality,
    width: img.width,
    height: img.height,
  });
  return bytes;
}

/**
 * Writes an image tensor (values in [0, 1]) or an 8-bit image as a PNG file,
 * atomically (see {@link writeFileAtomic}); parent folders are created. The
 * input is validated and encoded before anything touches the disk.
 *
 * @param path Destination `.png` file.
 * @param t A `[height, width, 1 | 3 | 4]` tensor, or a {@link RawImage}.
 * @returns Nothing, once the file is in place.
 * @throws {RangeError} Before writing anything, when `t` has the wrong shape.
 */
export async function writePng(path: string, t: tf.Tensor3D | RawImage): Promise<void> {
  let raw: RawImage;
  if (t instanceof tf.Tensor) {
    checkImageTensor(t, `writePng "${path}"`, true);
    raw = await tensorToRaw(t);
  } else {
    checkRaw(t, `writePng "${path}"`);
    raw = t;
  }
  await writeFileAtomic(path, await encodePng(raw));
}

/**
 * A `data:` URL for PNG bytes, to embed images in self-contained HTML.
 *
 * @param bytes PNG file bytes (see {@link encodePng}).
 * @returns `data:image/png;base64,...`.
 */
export function pngDataUrl(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return `data:image/png;base64,${btoa(binary)}`;
}

/** Interpolation of {@link resize}. */
export type ResizeMethod = "bilinear" | "nearest";

function checkSize(height: number, width: number, what: string): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`${what}: size must be positive integers, got ${height}x${width}.`);
  }
}

/**
 * Resizes an image or a batch of images (half-pixel centres, as in PIL and
 * OpenCV; nearest-neighbour with an integer factor repeats each pixel exactly).
 *
 * @param t A `[height, width, channels]` image.
 * @param height Output height.
 * @param width Output width.
 * @param method `"bilinear"` (default) or `"nearest"`.
 * @returns A new float32 `[height, width, channels]` tensor.
 */
export function resize(
  t: tf.Tensor3D,
  height: number,
  width: number,
  method?: ResizeMethod,
): tf.Tensor3D;
/**
 * Resizes a batch of images (half-pixel centres, as in PIL and OpenCV).
 *
 * @param t A `[batch, height, width, channels]` batch.
 * @param height Output height.
 * @param width Output width.
 * @param method `"bilinear"` (default) or `"nearest"`.
 * @returns A new float32 `[batch, height, width, channels]` tensor.
 */
export function resize(
  t: tf.Tensor4D,
  height: number,
  width: number,
  method?: ResizeMethod,
): tf.Tensor4D;
export function resize(
  t: tf.Tensor3D | tf.Tensor4D,
  height: number,
  width: number,
  method: ResizeMethod = "bilinear",
): tf.Tensor3D | tf.Tensor4D {
  if (!(t instanceof tf.Tensor) || (t.rank !== 3 && t.rank !== 4)) {
    throw new RangeError(
      "resize: expected a [height, width, channels] or [batch, height, width, channels] " +
        `tensor, got ${t instanceof tf.Tensor ? `shape [${t.shape.join(", ")}]` : typeof t}.`,
    );
  }
  checkSize(height, width, "resize");
  if (method !== "bilinear" && method !== "nearest") {
    throw new RangeError(`resize: method must be "bilinear" or "nearest", got "${method}".`);
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    const h = t.shape[t.rank - 3], w = t.shape[t.rank - 2];
    if (h === height && w === width) return x.clone();
    return method === "bilinear"
      ? tf.image.resizeBilinear(x, [height, width], false, true)
      : tf.image.resizeNearestNeighbor(x, [height, width], false, true);
  });
}

/**
 * Makes an image RGB: gray is copied into three channels, RGB is returned as a
 * copy.
 *
 * @param t A `[height, width, 1 | 3]` image.
 * @returns A new `[height, width, 3]` float32 tensor.
 */
export function toRgb(t: tf.Tensor3D): tf.Tensor3D {
  checkImageTensor(t, "toRgb");
  return tf.tidy(() => {
    const x = t.toFloat();
    return t.shape[2] === 1 ? tf.tile(x, [1, 1, 3]) : x.clone();
  });
}

/** How {@link toDisplay} maps values to [0, 1]. */
export type DisplayMode = "minmax" | "symmetric" | "percentile" | "clip01";

/** Options of {@link toDisplay}. */
export interface DisplayOptions {
  /**
   * - `"minmax"`: min to 0, max to 1 (a constant maps to 0).
   * - `"symmetric"`: 0 to 0.5, `±max|v|` to 0 and 1 (for signed maps such as
   *   gradients or weights).
   * - `"percentile"`: like `"symmetric"` (when some value is negative) or `[0, p]`
   *   to `[0, 1]` (when none is), where `p` is the `percentile`-th percentile of
   *   `|v|`, and values beyond are clipped: robust to a few extreme values.
   * - `"clip01"`: values clipped to [0, 1].
   *
   * @default {"minmax"}
   */
  mode?: DisplayMode;
  /**
   * Percentile of `|v|` that maps to full intensity in `"percentile"` mode,
   * in (0, 100].
   *
   * @default {99}
   */
  percentile?: number;
  /**
   * Normalize each item of the first axis (each image of a batch, each tile)
   * on its own instead of the whole tensor at once.
   *
   * @default {false}
   */
  perItem?: boolean;
}

/**
 * Maps any real-valued tensor to [0, 1] for viewing.
 *
 * @param t Any tensor (float or int), e.g. activations, gradients, weights.
 * @param options See {@link DisplayOptions}.
 * @returns A new float32 tensor of the same shape with values in [0, 1].
 */
export function toDisplay<T extends tf.Tensor>(t: T, options: DisplayOptions = {}): T {
  const { mode = "minmax", percentile = 99, perItem = false } = options;
  if (!(t instanceof tf.Tensor) || t.isDisposed) {
    throw new TypeError(`toDisplay: expected a live tf.Tensor, got ${describeValue(t)}.`);
  }
  if (!["minmax", "symmetric", "percentile", "clip01"].includes(mode)) {
    throw new RangeError(
      `toDisplay: mode must be "minmax", "symmetric", "percentile" or "clip01", got "${mode}".`,
    );
  }
  if (!(percentile > 0 && percentile <= 100)) {
    throw new RangeError(`toDisplay: percentile must be in (0, 100], got ${percentile}.`);
  }
  if (perItem && t.rank < 1) {
    throw new RangeError("toDisplay: perItem needs a tensor with at least one axis.");
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    if (mode === "clip01") return tf.clipByValue(x, 0, 1) as T;
    if (x.size === 0) return x.clone() as T;
    const byItem = perItem && t.rank >= 2;
    const items = byItem ? t.shape[0] : 1;
    const statShape = byItem ? [items, ...t.shape.slice(1).map(() => 1)] : [];
    const flat = x.reshape([items, -1]);
    const stat = (s: tf.Tensor): tf.Tensor => s.reshape(statShape);
    const safe = (s: tf.Tensor): tf.Tensor => tf.where(tf.greater(s, 0), s, tf.onesLike(s));
    if (mode === "minmax") {
      const lo = stat(flat.min(1));
      const range = tf.sub(stat(flat.max(1)), lo);
      return tf.clipByValue(tf.div(tf.sub(x, lo), safe(range)), 0, 1) as T;
    }
    const abs = flat.abs();
    if (mode === "symmetric") {
      const m = safe(stat(abs.max(1)));
      return tf.clipByValue(tf.add(0.5, tf.div(x, tf.mul(2, m))), 0, 1) as T;
    }
    const n = flat.shape[1] as number;
    const k = Math.min(n, Math.max(1, Math.ceil(n * (1 - percentile / 100))));
    const p = safe(stat(tf.topk(abs, k, false).values.min(1)));
    const signed = stat(tf.less(flat.min(1), 0).toFloat());
    const u = tf.div(x, p);
    const sym = tf.add(0.5, tf.mul(0.5, tf.clipByValue(u, -1, 1)));
    const pos = tf.clipByValue(u, 0, 1);
    return tf.add(tf.mul(signed, sym), tf.mul(tf.sub(1, signed), pos)) as T;
  });
}

/** Names of the built-in colormaps. */
export type ColormapName = "viridis" | "inferno" | "coolwarm" | "gray";

// Viridis and inferno: the 256-entry tables of matplotlib's colormaps (by
// Nathaniel Smith and Stefan van der Walt, CC0), as 8-bit RGB hex.
const VIRIDIS_HEX =
  "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467" +
  "48166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677" +
  "482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882" +
  "443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f4889" +
  "3e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c" +
  "38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e" +
  "31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e" +
  "2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e" +
  "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d" +
  "218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a" +
  "1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a884" +
  "23a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b" +
  "32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e" +
  "4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e" +
  "67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d549" +
  "89d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32" +
  "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11c" +
  "d2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61e" +
  "f6e620f8e621fbe723fde725";
const INFERNO_HEX =
  "00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d" +
  "09061f0a07220b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e" +
  "1b0c411c0c431e0c451f0c48210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c" +
  "320a5e340a5f3609613809623909633b09643d09653e0966400a67420a68440a68450a69470b6a490b6a" +
  "4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d57106e59106e5a116e5c126e5d126e5f136e" +
  "61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e71196e721a6e741a6e751b6e" +
  "771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a8a226a8c2369" +
  "8d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62" +
  "a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557" +
  "b93556ba3655bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149" +
  "cc4248ce4347cf4446d04545d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513a" +
  "de5238df5337e05536e15635e25734e35933e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429" +
  "eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711ff1731df2741cf3761bf37819f47918f57b17" +
  "f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0af98e09fa9008fa9207fa9407" +
  "fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0ffcac11fcae12" +
  "fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932" +
  "f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55d" +
  "f2e661f2e865f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96" +
  "f8fb9af9fc9dfafda1fcffa4";

// Coolwarm: Kenneth Moreland's diverging map ("Diverging Color Maps for
// Scientific Visualization", CoolWarmFloat33), 33 evenly spaced anchors.
const COOLWARM_ANCHORS: readonly (readonly [number, number, number])[] = [
  [0.2298, 0.2987, 0.7537],
  [0.2662, 0.3531, 0.8015],
  [0.3039, 0.4065, 0.8450],
  [0.3428, 0.4588, 0.8837],
  [0.3830, 0.5094, 0.9174],
  [0.4244, 0.5581, 0.9456],
  [0.4667, 0.6046, 0.9682],
  [0.5096, 0.6483, 0.9848],
  [0.5530, 0.6889, 0.9954],
  [0.5963, 0.7261, 0.9998],
  [0.6392, 0.7596, 0.9982],
  [0.6813, 0.7890, 0.9904],
  [0.7222, 0.8140, 0.9766],
  [0.7615, 0.8343, 0.9569],
  [0.7987, 0.8498, 0.9317],
  [0.8335, 0.8602, 0.9011],
  [0.8654, 0.8654, 0.8654],
  [0.8978, 0.8489, 0.8209],
  [0.9241, 0.8274, 0.7745],
  [0.9445, 0.8009, 0.7267],
  [0.9589, 0.7698, 0.6780],
  [0.9673, 0.7341, 0.6288],
  [0.9700, 0.6943, 0.5794],
  [0.9668, 0.6504, 0.5303],
  [0.9580, 0.6028, 0.4818],
  [0.9437, 0.5518, 0.4342],
  [0.9239, 0.4973, 0.3880],
  [0.8990, 0.4396, 0.3432],
  [0.8692, 0.3783, 0.3003],
  [0.8346, 0.3129, 0.2593],
  [0.7956, 0.2413, 0.2205],
  [0.7525, 0.1572, 0.1841],
  [0.7057, 0.0156, 0.1502],
];

const lutCache = new Map<ColormapName, Float32Array>();

function hexLut(hex: string): Float32Array {
  const out = new Float32Array(256 * 3);
  for (let i = 0; i < 256 * 3; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16) / 255;
  return out;
}

function anchorLut(anchors: readonly (readonly [number, number, number])[]): Float32Array {
  const out = new Float32Array(256 * 3);
  const last = anchors.length - 1;
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * last;
    const j = Math.min(last - 1, Math.floor(pos));
    const f = pos - j;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = anchors[j][c] * (1 - f) + anchors[j + 1][c] * f;
  }
  return out;
}

/**
 * The 256-entry lookup table of a built-in colormap, e.g. for a legend.
 *
 * @param name `"viridis"`, `"inferno"` (sequential), `"coolwarm"` (diverging) or `"gray"`.
 * @returns 256 RGB triples in [0, 1], flat (`lut[i * 3 + c]`); a fresh copy.
 * @throws {RangeError} For an unknown name.
 */
export function colormapLut(name: ColormapName): Float32Array {
  let lut = lutCache.get(name);
  if (!lut) {
    if (name === "viridis") lut = hexLut(VIRIDIS_HEX);
    else if (name === "inferno") lut = hexLut(INFERNO_HEX);
    else if (name === "coolwarm") lut = anchorLut(COOLWARM_ANCHORS);
    else if (name === "gray") lut = anchorLut([[0, 0, 0], [1, 1, 1]]);
    else {
      throw new RangeError(
        `Unknown colormap "${name}". Use "viridis", "inferno", "coolwarm" or "gray".`,
      );
    }
    lutCache.set(name, lut);
  }
  return lut.slice();
}

/** Options of {@link colormap}. */
export interface ColormapOptions {
  /**
   * Value mapped to the first colour. Defaults to the data's minimum, or to
   * `-max` when `symmetric`.
   *
   * @default {undefined}
   */
  min?: number;
  /**
   * Value mapped to the last colour. Defaults to the data's maximum, or to
   * `max|v|` when `symmetric`.
   *
   * @default {undefined}
   */
  max?: number;
  /**
   * When `min`/`max` are not given, use the range `[-max|v|, max|v|]` so that 0
   * falls on the centre colour (white-ish for coolwarm). Defaults to `true` for
   * `"coolwarm"` and `false` otherwise.
   *
   * @default {name === "coolwarm"}
   */
  symmetric?: boolean;
}

/**
 * Colours a 2-D map (or a batch of them) with a colormap, by a lookup in a
 * 256-entry table (one `gather`, batched on the backend).
 *
 * @param t A `[height, width]` map of any real values.
 * @param name Colormap: `"viridis"`, `"inferno"` (sequential), `"coolwarm"`
 *   (diverging blue-white-red) or `"gray"`.
 * @param options Value range, see {@link ColormapOptions}.
 * @returns A new `[height, width, 3]` RGB tensor in [0, 1].
 */
export function colormap(
  t: tf.Tensor2D,
  name: ColormapName,
  options?: ColormapOptions,
): tf.Tensor3D;
/**
 * Colours a batch of 2-D maps with a colormap (one range for the whole batch).
 *
 * @param t A `[batch, height, width]` batch of maps.
 * @param name Colormap, see above.
 * @param options Value range, see {@link ColormapOptions}.
 * @returns A new `[batch, height, width, 3]` RGB tensor in [0, 1].
 */
export function colormap(
  t: tf.Tensor3D,
  name: ColormapName,
  options?: ColormapOptions,
): tf.Tensor4D;
export function colormap(
  t: tf.Tensor2D | tf.Tensor3D,
  name: ColormapName,
  options: ColormapOptions = {},
): tf.Tensor3D | tf.Tensor4D {
  if (!(t instanceof tf.Tensor) || (t.rank !== 2 && t.rank !== 3)) {
    throw new RangeError(
      "colormap: expected a [height, width] map or a [batch, height, width] batch, got " +
        `${t instanceof tf.Tensor ? `shape [${t.shape.join(", ")}]` : typeof t}. ` +
        "Squeeze a channel axis first, e.g. t.squeeze([2]).",
    );
  }
  const lutValues = colormapLut(name);
  const { min, max, symmetric = name === "coolwarm" } = options;
  if (min !== undefined && max !== undefined && !(max > min)) {
    throw new RangeError(`colormap: max (${max}) must be greater than min (${min}).`);
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    let u: tf.Tensor;
    if (min === undefined && max === undefined && symmetric) {
      const m = x.abs().max();
      const safeM = tf.where(tf.greater(m, 0), m, tf.onesLike(m));
      u = tf.add(0.5, tf.div(x, tf.mul(2, safeM)));
    } else {
      const abs = symmetric ? x.abs().max() : undefined;
      const lo = min !== undefined ? tf.scalar(min) : abs ? tf.neg(abs) : x.min();
      const hi = max !== undefined ? tf.scalar(max) : abs ? abs : x.max();
      const range = tf.sub(hi, lo);
      u = tf.div(tf.sub(x, lo), tf.where(tf.greater(range, 0), range, tf.onesLike(range)));
    }
    const index = tf.round(tf.mul(tf.clipByValue(u, 0, 1), 255)).toInt();
    const lut = tf.tensor2d(lutValues, [256, 3], "float32");
    return tf.gather(lut, index) as tf.Tensor as tf.Tensor3D | tf.Tensor4D;
  });
}

/**
 * Blends a heatmap over an image: `(1 - alpha) * image + alpha * heat`. A gray
 * image is shown as gray RGB; the heatmap is resized (bilinear) to the image's
 * size when they differ.
 *
 * @param image A `[height, width, 1 | 3]` image in [0, 1].
 * @param heat A `[h, w, 3]` (or `[h, w, 1]`) heatmap in [0, 1], e.g. from {@link colormap}.
 * @param alpha Weight of the heatmap, in [0, 1].
 * @returns A new `[height, width, 3]` tensor.
 */
export function overlay(image: tf.Tensor3D, heat: tf.Tensor3D, alpha = 0.5): tf.Tensor3D {
  checkImageTensor(image, "overlay (image)");
  checkImageTensor(heat, "overlay (heat)");
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`overlay: alpha must be in [0, 1], got ${alpha}.`);
  }
  const [h, w] = image.shape;
  return tf.tidy(() => {
    const rgb = toRgb(image);
    const heatRgb = resize(toRgb(heat), h, w, "bilinear");
    return tf.add(tf.mul(rgb, 1 - alpha), tf.mul(heatRgb, alpha));
  });
}

function checkRgb(c: Rgb, what: string): void {
  if (!Array.isArray(c) || c.length !== 3 || !c.every((v) => v >= 0 && v <= 1)) {
    throw new RangeError(`${what} must be an [r, g, b] triple with values in [0, 1].`);
  }
}

/** Options of {@link grid} and {@link gridLayout}. */
export interface GridOptions {
  /**
   * Number of columns.
   *
   * @default {Math.ceil(Math.sqrt(count))}
   */
  cols?: number;
  /**
   * Background pixels between tiles and around the grid (in output pixels).
   *
   * @default {2}
   */
  pad?: number;
  /**
   * Integer nearest-neighbour upscaling of each tile (e.g. 4 shows 28x28 tiles
   * at 112x112).
   *
   * @default {1}
   */
  scale?: number;
  /**
   * One label per tile, drawn under it with the built-in 5x7 font (cut to the
   * tile's width). Fewer labels than tiles leaves the rest blank.
   *
   * @default {undefined}
   */
  labels?: readonly string[];
  /**
   * A title drawn on top of the grid (cut to the grid's width).
   *
   * @default {undefined}
   */
  title?: string;
  /**
   * Integer upscaling of the font (1 gives 5x7 pixel glyphs).
   *
   * @default {1}
   */
  fontScale?: number;
  /**
   * Background colour.
   *
   * @default {[1, 1, 1]}
   */
  background?: Rgb;
  /**
   * Text colour.
   *
   * @default {[0, 0, 0]}
   */
  textColor?: Rgb;
}

/** The geometry of a grid figure, in output pixels. */
export interface GridLayout {
  /** Number of rows of tiles. */
  rows: number;
  /** Number of columns of tiles. */
  cols: number;
  /** Height of one upscaled tile. */
  tileHeight: number;
  /** Width of one upscaled tile. */
  tileWidth: number;
  /** Height of the label strip under each tile (0 without labels). */
  labelHeight: number;
  /** Height of the title strip (0 without a title). */
  titleHeight: number;
  /** Height of one cell: tile plus label strip. */
  cellHeight: number;
  /** Width of one cell. */
  cellWidth: number;
  /** Height of the whole figure: `titleHeight + rows * (cellHeight + pad) + pad`. */
  height: number;
  /** Width of the whole figure: `cols * (cellWidth + pad) + pad`. */
  width: number;
}

/** Font pixels of space above a line of text in a label or title strip. */
const TEXT_MARGIN_TOP = 2;
/** Font pixels of space below a line of text in a label or title strip. */
const TEXT_MARGIN_BOTTOM = 1;

/**
 * Computes the geometry of the figure {@link grid} draws, without drawing it.
 *
 * @param count Number of tiles (at least 1).
 * @param tileHeight Height of one tile before upscaling.
 * @param tileWidth Width of one tile before upscaling.
 * @param options The grid's options.
 * @returns The figure's layout.
 * @throws {RangeError} For non-positive or non-integer sizes.
 */
export function gridLayout(
  count: number,
  tileHeight: number,
  tileWidth: number,
  options: GridOptions = {},
): GridLayout {
  const {
    cols: colsOption,
    pad = 2,
    scale = 1,
    labels,
    title,
    fontScale = 1,
  } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`grid: needs at least one tile, got ${count}.`);
  }
  checkSize(tileHeight, tileWidth, "grid tiles");
  const cols = colsOption ?? Math.ceil(Math.sqrt(count));
  const positive = { cols, scale, fontScale };
  for (const [key, v] of Object.entries(positive)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`grid: ${key} must be a positive integer, got ${v}.`);
    }
  }
  if (!Number.isInteger(pad) || pad < 0) {
    throw new RangeError(`grid: pad must be a non-negative integer, got ${pad}.`);
  }
  if (labels !== undefined && labels.length > count) {
    throw new RangeError(`grid: ${labels.length} labels for ${count} tiles; give one per tile.`);
  }
  const rows = Math.ceil(count / cols);
  const textHeight = (TEXT_MARGIN_TOP + GLYPH_HEIGHT + TEXT_MARGIN_BOTTOM) * fontScale;
  const labelHeight = labels !== undefined ? textHeight : 0;
  const titleHeight = title !== undefined ? textHeight : 0;
  const th = tileHeight * scale, tw = tileWidth * scale;
  const cellHeight = th + labelHeight;
  return {
    rows,
    cols,
    tileHeight: th,
    tileWidth: tw,
    labelHeight,
    titleHeight,
    cellHeight,
    cellWidth: tw,
    height: titleHeight + rows * (cellHeight + pad) + pad,
    width: cols * (tw + pad) + pad,
  };
}

/** Longest prefix of `text` whose rendering fits in `width` pixels. */
function fitText(text: string, width: number, fontScale: number): string {
  const step = (GLYPH_WIDTH + GLYPH_SPACING) * fontScale;
  const n = Math.max(0, Math.floor((width + GLYPH_SPACING * fontScale) / step));
  return text.slice(0, n);
}

/**
 * Draws centred text strips, one per entry, into an RGB float buffer of shape
 * `[texts.length, height, width, 3]`.
 */
function textStrips(
  texts: readonly string[],
  height: number,
  width: number,
  fontScale: number,
  background: Rgb,
  color: Rgb,
): Float32Array {
  const out = new Float32Array(texts.length * height * width * 3);
  for (let i = 0; i < out.length; i += 3) {
    out[i] = background[0];
    out[i + 1] = background[1];
    out[i + 2] = background[2];
  }
  texts.forEach((text, n) => {
    const bitmap = renderText(fitText(text, width, fontScale), fontScale);
    const x0 = Math.floor((width - bitmap.width) / 2);
    const y0 = TEXT_MARGIN_TOP * fontScale;
    for (let y = 0; y < bitmap.height; y++) {
      for (let x = 0; x < bitmap.width; x++) {
        if (!bitmap.data[y * bitmap.width + x]) continue;
        const o = ((n * height + y0 + y) * width + x0 + x) * 3;
        out[o] = color[0];
        out[o + 1] = color[1];
        out[o + 2] = color[2];
      }
    }
  });
  return out;
}

/**
 * Lays out tiles in a labelled grid: each tile upscaled by an integer factor,
 * with an optional label under it and an optional title on top. Gray tiles are
 * shown as gray RGB; values are clipped to [0, 1] (map them with
 * {@link toDisplay} or {@link colormap} first). The figure's size is given by
 * {@link gridLayout}.
 *
 * @param tiles A `[count, h, w, 1 | 3]` batch, or a list of `[h, w, 1 | 3]`
 *   images of one size.
 * @param options Layout, labels and colours, see {@link GridOptions}.
 * @returns A new `[height, width, 3]` RGB figure.
 * @throws {RangeError} For no tiles, tiles of different sizes or bad options.
 */
export function grid(tiles: tf.Tensor4D | tf.Tensor3D[], options: GridOptions = {}): tf.Tensor3D {
  const { labels, title, background = [1, 1, 1], textColor = [0, 0, 0] } = options;
  checkRgb(background, "grid: background");
  checkRgb(textColor, "grid: textColor");
  let count: number, h: number, w: number;
  if (Array.isArray(tiles)) {
    if (tiles.length === 0) throw new RangeError("grid: needs at least one tile, got 0.");
    tiles.forEach((t, i) => checkImageTensor(t, `grid (tile ${i})`));
    [h, w] = tiles[0].shape;
    const odd = tiles.findIndex((t) => t.shape[0] !== h || t.shape[1] !== w);
    if (odd >= 0) {
      throw new RangeError(
        `grid: all tiles must have one size; tile 0 is ${h}x${w} but tile ${odd} is ` +
          `${tiles[odd].shape[0]}x${tiles[odd].shape[1]}. Resize them first.`,
      );
    }
    count = tiles.length;
  } else {
    if (!(tiles instanceof tf.Tensor) || tiles.rank !== 4 || ![1, 3].includes(tiles.shape[3])) {
      throw new RangeError(
        "grid: expected a [count, height, width, 1 | 3] batch or a list of images, got " +
          `${tiles instanceof tf.Tensor ? `shape [${tiles.shape.join(", ")}]` : typeof tiles}.`,
      );
    }
    [count, h, w] = tiles.shape;
  }
  const layout = gridLayout(count, h, w, options);
  const { rows, cols, cellHeight, cellWidth, labelHeight, titleHeight } = layout;
  const { pad = 2, scale = 1, fontScale = 1 } = options;
  return tf.tidy(() => {
    const batch = Array.isArray(tiles) ? tf.stack(tiles.map((t) => toRgb(t))) : tiles.toFloat();
    let x = tf.clipByValue(batch.shape[3] === 1 ? tf.tile(batch, [1, 1, 1, 3]) : batch, 0, 1);
    if (scale > 1) {
      x = tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [h * scale, w * scale], false, true);
    }
    if (labels !== undefined) {
      const texts = Array.from({ length: count }, (_, i) => labels[i] ?? "");
      const strips = textStrips(texts, labelHeight, cellWidth, fontScale, background, textColor);
      x = tf.concat([x, tf.tensor4d(strips, [count, labelHeight, cellWidth, 3])], 1);
    }
    // Work relative to the background so that padding with zeros paints it.
    const bg = tf.tensor1d([...background]);
    const cells = tf.pad(tf.sub(x, bg), [[0, rows * cols - count], [0, pad], [0, pad], [0, 0]]);
    const rowMajor = cells
      .reshape([rows, cols, cellHeight + pad, (cellWidth + pad) * 3])
      .transpose([0, 2, 1, 3])
      .reshape([rows * (cellHeight + pad), cols * (cellWidth + pad), 3]);
    let figure = tf.add(tf.pad(rowMajor, [[pad, 0], [pad, 0], [0, 0]]), bg) as tf.Tensor3D;
    if (title !== undefined) {
      const strip = textStrips(
        [title],
        titleHeight,
        layout.width,
        fontScale,
        background,
        textColor,
      );
      figure = tf.concat([tf.tensor3d(strip, [titleHeight, layout.width, 3]), figure], 0);
    }
    return figure;
  });
}

/**
 * Draws the outline of a rectangle on an image, e.g. a receptive field or a
 * bounding box. The outline lies inside the box, `thickness` pixels wide; parts
 * outside the image are not drawn (a box may extend past the image, as
 * receptive fields do). Coordinates are rounded to whole pixels.
 *
 * @param image A `[height, width, 1 | 3]` image in [0, 1]; gray becomes gray RGB.
 * @param box The rectangle, `y1`/`x1` exclusive.
 * @param color Outline colour.
 * @param thickness Outline width in pixels (a positive integer).
 * @returns A new `[height, width, 3]` image.
 */
export function drawBox(
  image: tf.Tensor3D,
  box: Box,
  color: Rgb = [1, 0, 0],
  thickness = 1,
): tf.Tensor3D {
  checkImageTensor(image, "drawBox");
  checkRgb(color, "drawBox: color");
  if (!Number.isInteger(thickness) || thickness < 1) {
    throw new RangeError(`drawBox: thickness must be a positive integer, got ${thickness}.`);
  }
  const coords = [box?.y0, box?.x0, box?.y1, box?.x1];
  if (!coords.every((v) => Number.isFinite(v))) {
    throw new RangeError(
      `drawBox: box must have finite y0, x0, y1, x1, got ${JSON.stringify(box)}.`,
    );
  }
  const [y0, x0, y1, x1] = coords.map(Math.round);
  const [h, w] = image.shape;
  const mask = new Float32Array(h * w);
  const mark = (ya: number, yb: number, xa: number, xb: number): void => {
    for (let y = Math.max(ya, 0); y < Math.min(yb, h); y++) {
      const lo = Math.max(xa, 0), hi = Math.min(xb, w);
      if (hi > lo) mask.fill(1, y * w + lo, y * w + hi);
    }
  };
  if (y1 > y0 && x1 > x0) {
    const t = thickness;
    mark(y0, Math.min(y0 + t, y1), x0, x1); // top
    mark(Math.max(y1 - t, y0), y1, x0, x1); // bottom
    mark(y0, y1, x0, Math.min(x0 + t, x1)); // left
    mark(y0, y1, Math.max(x1 - t, x0), x1); // right
  }
  return tf.tidy(() => {
    const m = tf.tensor3d(mask, [h, w, 1]);
    const c = tf.tensor1d([...color]);
    return tf.add(tf.mul(toRgb(image), tf.sub(1, m)), tf.mul(m, c));
  });
}
