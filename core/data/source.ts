/**
 * The data-source contract: labelled images that a training loop, an
 * evaluation or a data-set-wide plugin reads in batches, by index, in bounded
 * memory. A source knows its size, image shape and class names and decodes
 * only the examples a batch asks for, so 60,000 images cost what one batch
 * costs. Sources are sliced by index (`subset`, `shard`), never by listing
 * order, so shard i of n takes the same examples on every machine.
 *
 * @example Four batches of an in-memory source
 * ```ts
 * import { tf } from "../tf.ts";
 * import { batches, tensorSource } from "./source.ts";
 * const images = tf.zeros([10, 4, 4, 1]) as tf.Tensor4D;
 * const source = tensorSource(images, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1], ["a", "b"]);
 * let seen = 0;
 * for await (const { x, y } of batches(source, 3)) {
 *   seen += x.shape[0];
 *   tf.dispose([x, y]);
 * }
 * if (seen !== 10) throw new Error(`${seen}`);
 * images.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import { readAhead } from "./prefetch.ts";

/** A batch of examples: images and their class indices (the caller disposes of both). */
export interface Batch {
  /** `[n, height, width, channels]` float32 images in the source's value range. */
  x: tf.Tensor4D;
  /** `[n]` int32 class indices. */
  y: tf.Tensor1D;
}

/** Labelled images read by index. */
export interface DataSource {
  /** What it is, for messages and sidecars (e.g. `fashion-mnist train`). */
  readonly name: string;
  /** Number of examples. */
  readonly size: number;
  /** `[height, width, channels]` of every image. */
  readonly shape: readonly [number, number, number];
  /** Class names; a label is an index into them. */
  readonly classes: readonly string[];
  /** `[lo, hi]` of the pixel values the batches hold. */
  readonly range: readonly [number, number];
  /** The class of example `i`, without decoding its image. */
  labelOf(i: number): number;
  /** The examples at `indices` (each in `[0, size)`), in that order. */
  batch(indices: readonly number[]): Promise<Batch>;
}

/**
 * Checks indices against a source's size.
 *
 * @param source The source.
 * @param indices Indices to read.
 * @throws {RangeError} naming the source and the index that is out of range.
 */
export function checkIndices(source: DataSource, indices: readonly number[]): void {
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= source.size) {
      throw new RangeError(
        `${source.name}: index ${i} is out of range; give indices in [0, ${source.size})`,
      );
    }
  }
}

/**
 * A source over images already in memory. The tensor stays the caller's: the
 * source gathers from it and never disposes of it.
 *
 * @param images `[n, h, w, c]` images.
 * @param labels One class index per image.
 * @param classes Class names (default: "0", "1", ...).
 * @param name What the source is.
 * @returns The source.
 * @throws {RangeError} when labels and images disagree in number or a label has no class.
 */
export function tensorSource(
  images: tf.Tensor4D,
  labels: ArrayLike<number>,
  classes?: readonly string[],
  name = "in-memory images",
): DataSource {
  const n = images.shape[0];
  if (labels.length !== n) {
    throw new RangeError(`${name}: ${labels.length} labels for ${n} images; give one label each`);
  }
  const y = Int32Array.from(labels);
  const top = y.reduce((a, b) => Math.max(a, b), -1);
  const names = classes ?? Array.from({ length: top + 1 }, (_, i) => String(i));
  if (top >= names.length || y.some((v) => v < 0)) {
    throw new RangeError(`${name}: label ${top} has no class among ${names.length} names`);
  }
  const range: [number, number] = [0, 1];
  const source: DataSource = {
    name,
    size: n,
    shape: images.shape.slice(1) as [number, number, number],
    classes: names,
    range,
    labelOf: (i) => y[i],
    // deno-lint-ignore require-await
    async batch(indices) {
      checkIndices(source, indices);
      return tf.tidy(() => {
        const at = tf.tensor1d(Int32Array.from(indices), "int32");
        return {
          x: tf.gather(images, at) as tf.Tensor4D,
          y: tf.tensor1d(Int32Array.from(indices, (i) => y[i]), "int32"),
        };
      });
    },
  };
  return source;
}

/** What {@linkcode arraySource} serves. */
export interface ArraySourceOptions {
  /** What the source is. */
  name: string;
  /** Pixels, image after image, row-major, channels last: float32 as they are, bytes / 255. */
  pixels: Float32Array | Uint8Array;
  /** One class index per image. */
  labels: ArrayLike<number>;
  /** `[height, width, channels]`. */
  shape: readonly [number, number, number];
  /** Class names, one per label value. */
  classes: readonly string[];
  /** Indices into the arrays that make up the source (default: every image). */
  indices?: readonly number[];
}

/**
 * A source over images held in a typed array (bytes stay bytes until a batch
 * needs them). Copies whole images per batch, never single pixels.
 *
 * @param o The arrays, shape and classes.
 * @returns The source, pixels in [0, 1] for bytes.
 * @throws {RangeError} when the arrays disagree or a label has no class.
 */
export function arraySource(o: ArraySourceOptions): DataSource {
  const [h, w, c] = o.shape;
  const area = h * w * c;
  const count = o.pixels.length / area;
  if (!Number.isInteger(count) || o.labels.length !== count) {
    throw new RangeError(
      `${o.name}: ${o.pixels.length} pixels and ${o.labels.length} labels do not make ` +
        `whole ${h}x${w}x${c} images with one label each`,
    );
  }
  const at = o.indices ? Int32Array.from(o.indices) : null;
  const size = at ? at.length : count;
  let top = 0;
  for (let i = 0; i < o.labels.length; i++) top = Math.max(top, o.labels[i]);
  if (top >= o.classes.length) {
    throw new RangeError(`${o.name}: label ${top} has no class among ${o.classes.length} names`);
  }
  const bytes = o.pixels instanceof Uint8Array;
  const source: DataSource = {
    name: o.name,
    size,
    shape: o.shape,
    classes: o.classes,
    range: [0, 1],
    labelOf: (i) => o.labels[at ? at[i] : i],
    // deno-lint-ignore require-await
    async batch(indices) {
      checkIndices(source, indices);
      const out = bytes
        ? new Uint8Array(indices.length * area)
        : new Float32Array(indices.length * area);
      const y = new Int32Array(indices.length);
      indices.forEach((k, j) => {
        const i = at ? at[k] : k;
        out.set(o.pixels.subarray(i * area, (i + 1) * area), j * area);
        y[j] = o.labels[i];
      });
      return tf.tidy(() => {
        const shape: [number, number, number, number] = [indices.length, h, w, c];
        const x = bytes
          ? tf.tensor4d(Float32Array.from(out), shape).div(255)
          : tf.tensor4d(out as Float32Array, shape);
        return { x: x as tf.Tensor4D, y: tf.tensor1d(y, "int32") };
      });
    },
  };
  return source;
}

/**
 * The examples of `source` at `indices`, as a source of its own (index k of
 * the subset is `indices[k]` of the source).
 *
 * @param source The whole source.
 * @param indices Indices into it.
 * @param name What the subset is.
 * @returns The subset.
 */
export function subset(
  source: DataSource,
  indices: readonly number[],
  name = `${source.name} subset`,
): DataSource {
  checkIndices(source, indices);
  const at = Int32Array.from(indices);
  const sub: DataSource = {
    name,
    size: at.length,
    shape: source.shape,
    classes: source.classes,
    range: source.range,
    labelOf: (i) => source.labelOf(at[i]),
    async batch(ks) {
      checkIndices(sub, ks);
      return await source.batch(ks.map((k) => at[k]));
    },
  };
  return sub;
}

/**
 * Shard `index` of `count`: a contiguous, deterministic slice by index, so
 * that shards are disjoint, cover the source, and are the same on every
 * machine.
 *
 * @param source The whole source.
 * @param index Which shard, from 0.
 * @param count How many shards.
 * @returns The shard.
 * @throws {RangeError} unless `0 <= index < count`.
 */
export function shard(source: DataSource, index: number, count: number): DataSource {
  if (
    !Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count
  ) {
    throw new RangeError(`shard ${index}/${count} is invalid: give 0 <= i < N, e.g. 0/4`);
  }
  const lo = Math.floor(index * source.size / count);
  const hi = Math.floor((index + 1) * source.size / count);
  return subset(
    source,
    Array.from({ length: hi - lo }, (_, k) => lo + k),
    `${source.name} shard ${index}/${count}`,
  );
}

/**
 * The first `perClass` examples of each class (in index order), or of the
 * classes named in `only`: small training sets drawn the same way every time.
 *
 * @param source The whole source.
 * @param perClass Examples per class.
 * @param only Class indices to keep (default: all).
 * @returns Their indices, in index order.
 */
export function perClassIndices(
  source: DataSource,
  perClass: number,
  only?: readonly number[],
): number[] {
  const keep = new Set(only ?? source.classes.map((_, i) => i));
  const taken = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < source.size; i++) {
    const c = source.labelOf(i);
    if (!keep.has(c) || (taken.get(c) ?? 0) >= perClass) continue;
    taken.set(c, (taken.get(c) ?? 0) + 1);
    out.push(i);
  }
  return out;
}

/** Options of {@linkcode batches}. */
export interface BatchesOptions {
  /**
   * Batches read ahead while the current one is used (files fetched and
   * decoded as they arrive), at most: memory holds at most `prefetch + 1`
   * batches.
   * @default 1
   */
  prefetch?: number;
}

/**
 * The source's examples in batches of `batchSize` (the last may be smaller),
 * in `order` (default: index order), each read while the one before is used
 * (bounded read-ahead, see `prefetch.ts`). Each batch is the caller's to
 * dispose of; batches read ahead and not taken (the caller stopped early)
 * are disposed here.
 *
 * @param source The source.
 * @param batchSize Examples per batch.
 * @param order Indices to visit (e.g. a seeded shuffle).
 * @param options How far to read ahead.
 * @returns The batches, one at a time.
 */
export async function* batches(
  source: DataSource,
  batchSize: number,
  order?: readonly number[],
  options: BatchesOptions = {},
): AsyncGenerator<Batch & { indices: number[] }> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batch size ${batchSize} is invalid: give a positive integer`);
  }
  const all = order ?? Array.from({ length: source.size }, (_, i) => i);
  yield* readAhead(
    Math.ceil(all.length / batchSize),
    async (b) => {
      const indices = all.slice(b * batchSize, (b + 1) * batchSize);
      return { ...(await source.batch(indices)), indices };
    },
    { depth: options.prefetch ?? 1, dispose: (b) => tf.dispose([b.x, b.y]) },
  );
}
