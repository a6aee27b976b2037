/**
 * Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 60,000 training and 10,000
 * test images of clothing, 28x28 grey, ten classes, as a {@linkcode DataSource}.
 * The IDX files come from Debian's `dataset-fashion-mnist` package
 * (`/usr/share/datasets/fashion-mnist/`); `CONVLENS_FASHION_MNIST` names another
 * folder holding the same four files (as published by Zalando Research, gzipped
 * or not). The images are read by index from the file, a batch at a time
 * (a gzipped file is decompressed once into a cache file, see `idx_file.ts`);
 * without a writable cache folder they are held in memory (47 MB for the
 * training split).
 *
 * @example The test split
 * ```ts ignore
 * import { fashionMnist } from "./fashion_mnist.ts";
 * const test = await fashionMnist("test");
 * console.log(test.size, test.classes[9]); // 10000 "Ankle boot"
 * ```
 *
 * @module
 */
import { idxSource, readIdx } from "./idx.ts";
import { idxFileSource } from "./idx_file.ts";
import type { DataSource } from "./source.ts";

/** The ten classes, in label order. */
export const FASHION_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Where Debian's `dataset-fashion-mnist` puts the files. */
export const FASHION_DIR = "/usr/share/datasets/fashion-mnist";

/** Which part of the data set. */
export type FashionSplit = "train" | "test";

function folder(): string {
  try {
    return Deno.env.get("CONVLENS_FASHION_MNIST") || FASHION_DIR;
  } catch {
    return FASHION_DIR;
  }
}

async function find(dir: string, stem: string): Promise<string | null> {
  for (const name of [`${stem}.gz`, stem]) {
    try {
      if ((await Deno.stat(`${dir}/${name}`)).isFile) return `${dir}/${name}`;
    } catch {
      // try the next name
    }
  }
  return null;
}

const cache = new Map<string, Promise<DataSource>>();

async function load(split: FashionSplit): Promise<DataSource> {
  const dir = folder();
  const prefix = split === "train" ? "train" : "t10k";
  const images = await find(dir, `${prefix}-images-idx3-ubyte`);
  const labels = await find(dir, `${prefix}-labels-idx1-ubyte`);
  if (!images || !labels) {
    throw new Error(
      `Fashion-MNIST ${split} files (${prefix}-images-idx3-ubyte[.gz], ` +
        `${prefix}-labels-idx1-ubyte[.gz]) are not in ${dir}: install Debian's ` +
        "dataset-fashion-mnist (apt install dataset-fashion-mnist), or download the four " +
        "IDX files from Zalando Research's fashion-mnist repository and set " +
        "CONVLENS_FASHION_MNIST to their folder",
    );
  }
  const y = await readIdx(labels);
  const name = `fashion-mnist ${split}`;
  let source: DataSource;
  try {
    // Read by index from the (decompressed, cached) file: a batch in memory, not 47 MB.
    source = await idxFileSource(images, y, FASHION_CLASSES, name);
  } catch {
    // No writable cache folder (no permission, no space, no HOME): the whole
    // file in memory, which also reports a file that is not IDX.
    source = idxSource(await readIdx(images), y, FASHION_CLASSES, name);
  }
  const expected = split === "train" ? 60_000 : 10_000;
  const [h, w] = source.shape;
  if (source.size !== expected || h !== 28 || w !== 28) {
    throw new Error(
      `${images} holds ${source.size}x${h}x${w} images, not ${expected}x28x28: ` +
        "it is not Fashion-MNIST's " + split + " split",
    );
  }
  return source;
}

/**
 * The Fashion-MNIST split, read once per process and then shared (treat it
 * as read-only; it holds no tensors).
 *
 * @param split `train` (60,000 images) or `test` (10,000).
 * @returns The source, pixels in [0, 1].
 * @throws {Error} naming the package to install when the files are missing.
 */
export function fashionMnist(split: FashionSplit): Promise<DataSource> {
  const key = `${folder()}\n${split}`;
  let p = cache.get(key);
  if (!p) {
    p = load(split);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}
