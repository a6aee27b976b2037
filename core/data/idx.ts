/**
 * IDX files, the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte`,
 * optionally gzipped), read into memory as the bytes they hold and served as a
 * {@linkcode DataSource}: pixels stay one byte each and become float32 in
 * [0, 1] one batch at a time, so the 60,000 training images take 47 MB, not
 * 188 MB.
 *
 * The format: a big-endian magic number whose third byte is the element type
 * (0x08 unsigned byte) and fourth the number of dimensions, then one 32-bit
 * big-endian size per dimension, then the data in row-major order.
 *
 * @module
 */
import { arraySource, type DataSource } from "./source.ts";

/** An IDX array of unsigned bytes. */
export interface IdxArray {
  /** Sizes, outermost first (e.g. `[60000, 28, 28]`). */
  dims: number[];
  /** The elements, row-major. */
  data: Uint8Array;
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Parses IDX bytes (gzipped or not) of unsigned bytes.
 *
 * @param bytes The file's contents.
 * @param what Where they come from, for messages.
 * @returns Its dimensions and data.
 * @throws {Error} when the bytes are not an IDX array of unsigned bytes, or are truncated.
 */
export async function parseIdx(bytes: Uint8Array, what: string): Promise<IdxArray> {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? await gunzip(bytes) : bytes;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.length < 4 || view.getUint16(0) !== 0) {
    throw new Error(`${what} is not an IDX file (no IDX magic number)`);
  }
  const type = raw[2], rank = raw[3];
  if (type !== 0x08) {
    throw new Error(`${what}: IDX element type 0x${type.toString(16)} is not unsigned byte (0x08)`);
  }
  const header = 4 + 4 * rank;
  if (rank < 1 || raw.length < header) throw new Error(`${what}: IDX header is truncated`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  if (raw.length < header + count) {
    throw new Error(
      `${what} is truncated: ${raw.length - header} of ${count} bytes of data; fetch it again`,
    );
  }
  return { dims, data: raw.subarray(header, header + count) };
}

/**
 * Reads an IDX file (gzipped or not).
 *
 * @param path The file.
 * @returns Its dimensions and data.
 * @throws {Error} as {@linkcode parseIdx}, or when the file cannot be read.
 */
export async function readIdx(path: string): Promise<IdxArray> {
  return parseIdx(await Deno.readFile(path), path);
}

/**
 * A source over IDX images (`[n, h, w]` bytes) and labels (`[n]` bytes).
 *
 * @param images The images array.
 * @param labels The labels array.
 * @param classes Class names (one per label value).
 * @param name What the source is.
 * @returns The source; pixels are scaled to [0, 1] per batch.
 * @throws {RangeError} when images and labels disagree or a label has no class.
 */
export function idxSource(
  images: IdxArray,
  labels: IdxArray,
  classes: readonly string[],
  name: string,
): DataSource {
  const [n, h, w] = images.dims;
  if (images.dims.length !== 3 || labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new RangeError(
      `${name}: images ${images.dims.join("x")} and labels ${labels.dims.join("x")} ` +
        "do not pair up; give [n, h, w] images and [n] labels",
    );
  }
  const top = labels.data.reduce((a, b) => Math.max(a, b), 0);
  if (top >= classes.length) {
    throw new RangeError(`${name}: label ${top} has no class among ${classes.length} names`);
  }
  return arraySource({ name, pixels: images.data, labels: labels.data, shape: [h, w, 1], classes });
}
