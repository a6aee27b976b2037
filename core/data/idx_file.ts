/**
 * IDX images read by index from disk: a data set of IDX bytes
 * (`train-images-idx3-ubyte`) served a batch at a time from the file itself,
 * so a process holds one batch of pixels, not the whole set (47 MB for the
 * 60,000 Fashion-MNIST training images, per process: K workers would hold K
 * copies, while the operating system's page cache holds one, shared). A
 * gzipped file is decompressed once, streaming, into a cache file
 * (`CONVLENS_CACHE`, else `$XDG_CACHE_HOME/convlens`, else
 * `~/.cache/convlens`), written under a temporary name and renamed, so
 * concurrent first runs never read half a file. A batch reads each run of
 * consecutive indices with one read.
 *
 * @example The Fashion-MNIST test images from their cache file
 * ```ts ignore
 * import { idxFileSource } from "./idx_file.ts";
 * import { readIdx } from "./idx.ts";
 * const labels = await readIdx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
 * const test = await idxFileSource(
 *   "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", labels, ["0", "1"], "test");
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { IdxArray } from "./idx.ts";
import { checkIndices, type DataSource } from "./source.ts";

/** Options of {@linkcode idxFileSource}. */
export interface IdxFileOptions {
  /** Where a gzipped file is decompressed to. @default CONVLENS_CACHE, XDG_CACHE_HOME/convlens or ~/.cache/convlens */
  cacheDir?: string;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The folder cache files go to.
 *
 * @returns `CONVLENS_CACHE`, else `$XDG_CACHE_HOME/convlens`, else `~/.cache/convlens`.
 * @throws {Error} when none of these can be told (no HOME).
 */
export function cacheFolder(): string {
  const own = env("CONVLENS_CACHE");
  if (own) return own;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/convlens`;
  const home = env("HOME");
  if (!home) throw new Error("No cache folder: set CONVLENS_CACHE (or HOME)");
  return `${home}/.cache/convlens`;
}

async function readFully(file: Deno.FsFile, offset: number, out: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < out.length) {
    const n = await file.read(out.subarray(got));
    if (n === null) throw new Error(`IDX file ends at byte ${offset + got}: truncated`);
    got += n;
  }
}

function readFullySync(file: Deno.FsFile, offset: number, out: Uint8Array): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < out.length) {
    const n = file.readSync(out.subarray(got));
    if (n === null) throw new Error(`IDX file ends at byte ${offset + got}: truncated`);
    got += n;
  }
}

/** The header of an IDX file of unsigned bytes: its dimensions and where the data starts. */
async function header(path: string): Promise<{ dims: number[]; start: number; size: number }> {
  const file = await Deno.open(path);
  try {
    const size = (await file.stat()).size;
    const head = new Uint8Array(Math.min(size, 4 + 4 * 4));
    await readFully(file, 0, head);
    const view = new DataView(head.buffer);
    if (head.length < 4 || view.getUint16(0) !== 0 || head[2] !== 0x08) {
      throw new Error(`${path} is not an IDX file of unsigned bytes`);
    }
    const rank = head[3];
    if (rank < 1 || head.length < 4 + 4 * rank) throw new Error(`${path}: IDX header is truncated`);
    const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
    return { dims, start: 4 + 4 * rank, size };
  } finally {
    file.close();
  }
}

/**
 * The uncompressed IDX file for `path`: the file itself, or its cache file
 * (decompressed now, streaming, if it is not there whole).
 *
 * @param path An IDX file, gzipped or not.
 * @param cacheDir Where decompressed files go.
 * @returns The path of an uncompressed IDX file.
 */
export async function uncompressedIdx(
  path: string,
  cacheDir: string = cacheFolder(),
): Promise<string> {
  const file = await Deno.open(path);
  const magic = new Uint8Array(2);
  try {
    await readFully(file, 0, magic);
  } finally {
    file.close();
  }
  if (!(magic[0] === 0x1f && magic[1] === 0x8b)) return path;
  const stat = await Deno.stat(path);
  // The cache file is named after the source and its size and time, so another
  // version of the same name is decompressed anew.
  const base = path.split("/").pop()!.replace(/\.gz$/, "");
  const cached = `${cacheDir.replace(/\/+$/, "")}/${base}-${stat.size}-${
    stat.mtime?.getTime() ?? 0
  }`;
  try {
    const h = await header(cached);
    if (h.size === h.start + h.dims.reduce((a, b) => a * b, 1)) return cached;
  } catch {
    // absent or not whole: decompress it
  }
  await Deno.mkdir(cacheDir, { recursive: true });
  const tmp = `${cached}.tmp-${Deno.pid}`;
  try {
    const src = await Deno.open(path);
    const dst = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await src.readable.pipeThrough(new DecompressionStream("gzip")).pipeTo(dst.writable);
    await Deno.rename(tmp, cached);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  return cached;
}

/**
 * A source over IDX images (`[n, h, w]` bytes) read by index from disk, and
 * labels (`[n]` bytes) in memory.
 *
 * @param imagesPath The images' IDX file, gzipped or not.
 * @param labels The labels array (small: kept in memory).
 * @param classes Class names (one per label value).
 * @param name What the source is.
 * @param options Where a gzipped file is decompressed to.
 * @returns The source; pixels are scaled to [0, 1] per batch.
 * @throws {Error} when the file is not IDX bytes, cannot be decompressed, or does not pair
 *   with the labels.
 */
export async function idxFileSource(
  imagesPath: string,
  labels: IdxArray,
  classes: readonly string[],
  name: string,
  options: IdxFileOptions = {},
): Promise<DataSource> {
  const path = await uncompressedIdx(imagesPath, options.cacheDir);
  const { dims, start, size } = await header(path);
  const [n, h, w] = dims;
  if (dims.length !== 3 || labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new RangeError(
      `${name}: images ${dims.join("x")} and labels ${labels.dims.join("x")} do not pair up; ` +
        "give [n, h, w] images and [n] labels",
    );
  }
  const area = h * w;
  if (size < start + n * area) {
    throw new Error(`${path} is truncated: ${size} bytes for ${n} ${h}x${w} images`);
  }
  const top = labels.data.reduce((a, b) => Math.max(a, b), 0);
  if (top >= classes.length) {
    throw new RangeError(`${name}: label ${top} has no class among ${classes.length} names`);
  }
  const source: DataSource = {
    name,
    size: n,
    shape: [h, w, 1],
    classes,
    range: [0, 1],
    labelOf: (i) => labels.data[i],
    // deno-lint-ignore require-await
    async batch(indices) {
      checkIndices(source, indices);
      const bytes = new Uint8Array(indices.length * area);
      // Synchronous reads of the page cache: a shuffled batch is one read per
      // example, and an asynchronous read costs ~15 times a synchronous one
      // here. One handle per batch, closed before returning: nothing is left
      // open between batches.
      const file = Deno.openSync(path);
      try {
        for (let j = 0; j < indices.length;) {
          let k = j + 1;
          while (k < indices.length && indices[k] === indices[k - 1] + 1) k++;
          readFullySync(file, start + indices[j] * area, bytes.subarray(j * area, k * area));
          j = k;
        }
      } finally {
        file.close();
      }
      const y = Int32Array.from(indices, (i) => labels.data[i]);
      return tf.tidy(() => ({
        x: tf.tensor4d(Float32Array.from(bytes), [indices.length, h, w, 1]).div(255) as tf.Tensor4D,
        y: tf.tensor1d(y, "int32"),
      }));
    },
  };
  return source;
}
