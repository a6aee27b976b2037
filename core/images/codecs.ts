/**
 * Image files for convlens: PNG/JPEG decoding and encoding, reading and writing,
 * and conversion between 8-bit RGBA images and float tensors in [0, 1].

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
import { tf } from "../tf.ts";
import { writeFileAtomic } from "../files.ts";
import { checkImageTensor } from "./_checks.ts";

/** An 8-bit RGBA image in memory, row-major, 4 bytes per pixel. */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, `width * height * 4` long. */
  data: Uint8ClampedArray;
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
 * The most pixels an image may have before it is refused undecoded: 50
 * megapixels, about 200 MB as RGBA bytes and 600 MB as float RGB.
 */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/** Options of {@linkcode decodeImage} and {@linkcode readImage}. */
export interface DecodeOptions {
  /**
   * Refuse images with more pixels than this, from the file's header, before
   * decoding (decoding a huge image takes minutes and gigabytes).
   * @default {DEFAULT_MAX_PIXELS}
   */
  maxPixels?: number;
}

/** An image file's format and size, read from its header alone. */
export interface ImageHeader {
  /** The file's format. */
  kind: "PNG" | "JPEG";
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 3 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      i += 2; // markers without a length
      continue;
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    const frame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (frame && i + 8 < bytes.length) {
      return {
        height: (bytes[i + 5] << 8) | bytes[i + 6],
        width: (bytes[i + 7] << 8) | bytes[i + 8],
      };
    }
    i += 2 + length;
  }
  return undefined;
}

/**
 * Reads an image file's format and size from its header, without decoding it.
 *
 * @param bytes The file's contents (the first few kilobytes are enough for a PNG;
 *   a JPEG's frame header may come after its metadata).
 * @returns The header, or `undefined` when the bytes are not a PNG or JPEG whose
 *   size can be read.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) {
    if (bytes.length < 24) return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { kind: "PNG", width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    const size = jpegSize(bytes);
    return size && { kind: "JPEG", ...size };
  }
  return undefined;
}

/**
 * Refuses an image whose header says it has more than `maxPixels` pixels.
 *
 * @param bytes The file's contents.
 * @param source Where the bytes came from, named in the message.
 * @param maxPixels The limit.
 * @throws {RangeError} naming the size, the limit and how to raise it.
 */
export function checkImageSize(
  bytes: Uint8Array,
  source: string,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): void {
  if (!(typeof maxPixels === "number" && maxPixels >= 1)) {
    throw new RangeError(`maxPixels must be a number >= 1, got ${maxPixels}`);
  }
  const head = readImageHeader(bytes);
  if (!head) return;
  const pixels = head.width * head.height;
  if (pixels > maxPixels) {
    throw new RangeError(
      `Image "${source}" is too large: ${head.width}x${head.height} is ` +
        `${(pixels / 1e6).toFixed(1)} megapixels, over the limit of ${
          (maxPixels / 1e6).toFixed(1)
        }; shrink it first, or raise the limit (--max-pixels, or maxPixels in the API)`,
    );
  }
}

/**
 * Decodes a PNG (RGB, RGBA, gray, gray+alpha or palette) or JPEG file into RGBA bytes.
 *
 * @param bytes The file's contents.
 * @param source Where the bytes came from (a path or URL), named in error messages.
 * @param options The pixel limit.
 * @returns The decoded image.
 * @throws {RangeError} When the header gives more than `maxPixels` pixels ("too large").
 * @throws {Error} When the bytes are empty, of another format, corrupt or
 *   truncated; the message names `source` and says what to give instead.
 */
export async function decodeImage(
  bytes: Uint8Array,
  source: string,
  options: DecodeOptions = {},
): Promise<RawImage> {
  let kind: "PNG" | "JPEG";
  if (startsWith(bytes, PNG_SIGNATURE)) kind = "PNG";
  else if (startsWith(bytes, [0xff, 0xd8, 0xff])) kind = "JPEG";
  else throw decodeError(source, describeUnknown(bytes));
  checkImageSize(bytes, source, options.maxPixels ?? DEFAULT_MAX_PIXELS);
  let decoded: { width: number; height: number; rgba: Uint8Array };
  try {
    if (kind === "PNG") {
      try {
        const out = (await pngWasm.init()).decode(bytes);
        decoded = { width: out.width, height: out.height, rgba: out.framebuffer };
      } catch (wasmError) {
        // imagescript's WebAssembly inflater rejects some valid files (its own
        // encoder's output among them, code -8); its JS decoder reads them.
        try {
          const out = pngCodec.decode(bytes);
          decoded = { width: out.width, height: out.height, rgba: out.pixels };
        } catch {
          throw wasmError;
        }
      }
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
 * Reads a PNG or JPEG file's bytes, naming the problem when it cannot be read.
 *
 * @param path The file's path.
 * @returns The file's contents.
 * @throws {Error} When the file is missing, a folder, or unreadable (a missing
 *   read permission names the flag).
 */
export async function readImageBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new Error(
        `Cannot read image "${path}": no read permission; run with --allow-read=${path}`,
      );
    }
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
}

/**
 * Reads and decodes a PNG or JPEG file.
 *
 * @param path The file's path.
 * @param options The pixel limit.
 * @returns The decoded image.
 * @throws {Error} When the file is missing or unreadable (the message names the
 *   path and what to check) or cannot be decoded (see {@link decodeImage}).
 */
export async function readImage(path: string, options: DecodeOptions = {}): Promise<RawImage> {
  return await decodeImage(await readImageBytes(path), path, options);
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
