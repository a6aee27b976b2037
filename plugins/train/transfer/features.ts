/**
 * CNN features off the shelf (Razavian et al. 2014; DeCAF, Donahue et al.
 * 2013): the activations of any layer of any Net, nested layers included
 * (`base/conv2`), computed once over a data source in memory-bounded batches
 * and kept as a {@linkcode DataSource} of their own, so that `fit`, the linear
 * probes and anything else that reads data read them like images.
 *
 * A conv layer's map is average-pooled to a small grid first (`pool: "grid"`,
 * the default): the grid side is the largest that keeps `side * side *
 * channels` within `dims` (the protocol of Goyal et al. 2019, who resize every
 * layer's map by average pooling to about the same number of features so that
 * layers compare fairly). Global average pooling (`"gap"`) keeps only what a
 * channel sees, not where, which costs the early layers dearly on digits;
 * `"flatten"` keeps every unit (and grows with the map). Features come back
 * as images `[n, side, side, c]` (a dense layer's as `[n, 1, 1, d]`) with the
 * labels of the underlying source. The pooling runs in the model's space;
 * where it runs, no learned weights change, so the same pixels always give
 * the same features.
 *
 * @example Features of two layers of a tiny net
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { Net } from "../../../core/net.ts";
 * import { tensorSource } from "../../../core/data/source.ts";
 * import { layerFeatures } from "./features.ts";
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, name: "c1" }),
 *   tf.layers.flatten({ name: "f" }),
 *   tf.layers.dense({ units: 2, name: "d" }),
 * ] });
 * const images = tf.randomUniform([6, 8, 8, 1], 0, 1, "float32", 1) as tf.Tensor4D;
 * const data = tensorSource(images, [0, 1, 0, 1, 0, 1]);
 * const feats = await layerFeatures(Net.fromModel(model), data, { layers: ["c1", "d"], dims: 16 });
 * if (feats.get("c1")!.shape.join() !== "2,2,4") throw new Error("c1 pooled to 2x2x4");
 * if (feats.get("d")!.shape.join() !== "1,1,2") throw new Error("d as [1, 1, 2]");
 * images.dispose();
 * model.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { LayerInfo, Net } from "../../../core/net.ts";
import { arraySource, type DataSource } from "../../../core/data/source.ts";
import { batchSizeForLayers } from "../../../core/memory_budget.ts";
import { type Progress, silentProgress } from "../../../core/progress.ts";
import { readAhead } from "../../../core/data/prefetch.ts";

/** How a layer's map becomes a feature vector. */
export type FeaturePooling = "grid" | "gap" | "flatten";

/** The feature pooling modes. */
export const FEATURE_POOLINGS: readonly FeaturePooling[] = ["grid", "gap", "flatten"];

/** Options of {@linkcode layerFeatures}. */
export interface FeatureOptions {
  /** Layers to read (names or paths such as `base/conv2`; `input` is the pixels). */
  layers: readonly string[];
  /** How maps are pooled. @default "grid" */
  pool?: FeaturePooling;
  /** Most features per layer under `"grid"` pooling. @default 1024 */
  dims?: number;
  /** Examples per forward pass. @default as many as `memoryMB` allows, at most 256 */
  batchSize?: number;
  /** Megabytes of activations a batch may take. @default CONVLENS_MEMORY_MB or 512 */
  memoryMB?: number;
  /** Progress reporting. @default silent */
  progress?: Progress;
}

/**
 * The side of the pooled grid of a `[h, w, c]` map.
 *
 * @param shape The layer's output shape without the batch axis.
 * @param pool The pooling mode.
 * @param dims The feature budget of `"grid"` pooling.
 * @returns `[side_h, side_w]`; `[1, 1]` for vectors.
 */
export function pooledGrid(
  shape: readonly number[],
  pool: FeaturePooling,
  dims: number,
): [number, number] {
  if (shape.length !== 3) return [1, 1];
  const [h, w, c] = shape;
  if (pool === "flatten") return [h, w];
  if (pool === "gap") return [1, 1];
  const side = Math.max(1, Math.floor(Math.sqrt(dims / c)));
  return [Math.min(h, side), Math.min(w, side)];
}

/** `[g, n]` averaging matrix: row i averages cells [floor(i n / g), ceil((i + 1) n / g)). */
function poolingMatrix(g: number, n: number): tf.Tensor2D {
  const m = new Float32Array(g * n);
  for (let i = 0; i < g; i++) {
    const lo = Math.floor(i * n / g), hi = Math.ceil((i + 1) * n / g);
    for (let j = lo; j < hi; j++) m[i * n + j] = 1 / (hi - lo);
  }
  return tf.tensor2d(m, [g, n]);
}

/**
 * Adaptive average pooling (PyTorch's `adaptive_avg_pool2d`): a `[n, h, w, c]`
 * map to `[n, gh, gw, c]`, cell (i, j) the mean of rows
 * `[floor(i h / gh), ceil((i + 1) h / gh))` and the columns alike, as two
 * matrix products (any h, w, no per-cell loops).
 *
 * @param x The maps.
 * @param gh Output rows (1 to h).
 * @param gw Output columns (1 to w).
 * @returns The pooled maps (the caller owns them).
 * @throws {RangeError} for a grid larger than the map.
 */
export function adaptiveAvgPool(x: tf.Tensor4D, gh: number, gw: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (!(Number.isInteger(gh) && Number.isInteger(gw) && gh >= 1 && gw >= 1 && gh <= h && gw <= w)) {
    throw new RangeError(
      `Pooled grid ${gh}x${gw} does not fit a ${h}x${w} map; give 1 to ${h} rows and 1 to ${w} columns`,
    );
  }
  if (gh === h && gw === w) return x.clone();
  return tf.tidy(() => {
    const ph = poolingMatrix(gh, h), pw = poolingMatrix(gw, w);
    // Rows: [n, w, c, h] x [h, gh]; columns: [n, gh, c, w] x [w, gw].
    const rows = x.transpose([0, 2, 3, 1]).reshape([n * w * c, h]).matMul(ph, false, true)
      .reshape([n, w, c, gh]);
    const cols = rows.transpose([0, 3, 2, 1]).reshape([n * gh * c, w]).matMul(pw, false, true)
      .reshape([n, gh, c, gw]);
    return cols.transpose([0, 1, 3, 2]) as tf.Tensor4D;
  });
}

/**
 * The layers a probe reads by default: the input, then every conv, pool,
 * dense, global-pool and merge layer (activations, batch norm, dropout and
 * reshapes repeat what the layer before them holds).
 *
 * @param net The model.
 * @returns Their names, in depth order.
 */
export function probeableLayers(net: Net): string[] {
  const roles = new Set(["input", "conv", "depthwise", "pool", "dense", "global", "merge"]);
  return net.layers.filter((l) => roles.has(l.role)).map((l) => l.name);
}

/**
 * Checks a list of layer names against the model.
 *
 * @param net The model.
 * @param layers Names or paths.
 * @returns Their LayerInfo, in the order given.
 * @throws {RangeError} for an empty list or an unknown layer, listing the layers there are.
 */
export function checkLayers(net: Net, layers: readonly string[]): LayerInfo[] {
  if (layers.length === 0) {
    throw new RangeError(
      `Give at least one layer; this model's are ${net.layers.map((l) => l.name).join(", ")}`,
    );
  }
  return layers.map((name) => net.layer(name));
}

/**
 * The features of `layers` for every example of a source, as typed arrays:
 * what {@linkcode layerFeatures} keeps as sources, and what a shard of a
 * feature-extraction job writes to its state file.
 */
export interface LayerFeatureArrays {
  /** The layers' names, in the order asked. */
  names: string[];
  /** Each layer's feature shape `[side, side, channels]` (`[1, 1, d]` for vectors). */
  shapes: [number, number, number][];
  /** Each layer's features, example after example. */
  arrays: Float32Array[];
  /** Each layer's smallest and largest feature (`[Infinity, -Infinity]` for no examples). */
  ranges: [number, number][];
}

/**
 * Computes the features of `layers` for every example of `source`, once, in
 * batches that fit the memory budget, as typed arrays (no tensors held).
 *
 * @param net The model.
 * @param source The images (in the source's range, mapped into the model's
 *   input space as the Net's contract says).
 * @param options Layers, pooling, batch size.
 * @returns The features by layer, with their shapes and value ranges.
 * @throws {RangeError} for unknown layers, or images that do not fit the model.
 */
export async function layerFeatureArrays(
  net: Net,
  source: DataSource,
  options: FeatureOptions,
): Promise<LayerFeatureArrays> {
  const infos = checkLayers(net, options.layers);
  const pool = options.pool ?? "grid";
  if (!FEATURE_POOLINGS.includes(pool)) {
    throw new RangeError(`Unknown pooling "${pool}": give one of ${FEATURE_POOLINGS.join(", ")}`);
  }
  const dims = options.dims ?? 1024;
  if (!(Number.isInteger(dims) && dims >= 1)) {
    throw new RangeError(`dims ${dims} is invalid: give a positive integer`);
  }
  const { height, width, channels } = net.input;
  const [sh, sw, sc] = source.shape;
  if (sh !== height || sw !== width || sc !== channels) {
    throw new RangeError(
      `${source.name} holds ${sh}x${sw}x${sc} images but the model takes ` +
        `${height}x${width}x${channels}; give data of the model's input size`,
    );
  }
  const names = infos.map((l) => l.name);
  const shapes = infos.map((l) => {
    const s = l.outputShape;
    const [gh, gw] = pooledGrid(s, pool, dims);
    const c = s.length === 3 ? s[2] : s.reduce((a, b) => a * b, 1);
    return [gh, gw, c] as [number, number, number];
  });
  const per = shapes.map(([a, b, c]) => a * b * c);
  const store = per.map((d) => new Float32Array(source.size * d));
  const ranges: [number, number][] = per.map(() => [Infinity, -Infinity]);
  const batchSize = options.batchSize ??
    batchSizeForLayers(net.layers.map((l) => l.outputShape), 256, {
      pass: "forward",
      memoryMB: options.memoryMB,
    });
  const progress = options.progress ?? silentProgress;
  const [lo, hi] = source.range;
  progress.start(`features of ${names.length} layers`);
  // The next batch is read (its files decoded) while this one runs.
  const reads = readAhead(Math.ceil(source.size / batchSize), async (b) => {
    const start = b * batchSize;
    const indices = Array.from(
      { length: Math.min(batchSize, source.size - start) },
      (_, k) => start + k,
    );
    const { x, y } = await source.batch(indices);
    y.dispose();
    return { x, start, indices };
  }, { dispose: (r) => r.x.dispose() });
  for await (const batch of reads) {
    const { start, indices } = batch;
    const pooled = tf.tidy(() => {
      const pixels = lo === 0 && hi === 1 ? batch.x : batch.x.sub(lo).div(hi - lo);
      const x = net.fromPixels(pixels);
      const { taps } = net.forward(x, { taps: names, stopAtTaps: true });
      return names.map((name, k) => {
        const t = taps[name];
        const [gh, gw] = shapes[k];
        return t.rank === 4
          ? adaptiveAvgPool(t as tf.Tensor4D, gh, gw)
          : t.reshape([indices.length, per[k]]);
      });
    });
    batch.x.dispose();
    for (let k = 0; k < names.length; k++) {
      store[k].set(await pooled[k].data() as Float32Array, start * per[k]);
      const [bLo, bHi] = tf.tidy(() => [pooled[k].min(), pooled[k].max()]);
      ranges[k] = [
        Math.min(ranges[k][0], (await bLo.data())[0]),
        Math.max(ranges[k][1], (await bHi.data())[0]),
      ];
      tf.dispose([bLo, bHi]);
    }
    tf.dispose(pooled);
    progress.update(start + indices.length, source.size);
  }
  progress.end(`${source.size} examples`);
  return { names, shapes, arrays: store, ranges };
}

/**
 * The features as data sources, one per layer, with the labels and classes
 * of the images they were computed from.
 *
 * @param features What {@linkcode layerFeatureArrays} gave.
 * @param of The images' source (its labels, classes and name).
 * @returns One source per layer, in the features' order.
 */
export function featureSources(
  features: LayerFeatureArrays,
  of: DataSource,
): Map<string, DataSource> {
  const labels = Int32Array.from({ length: of.size }, (_, i) => of.labelOf(i));
  return new Map(features.names.map((name, k) => [
    name,
    featureSource(
      `${name} features of ${of.name}`,
      features.arrays[k],
      labels,
      features.shapes[k],
      of,
      features.ranges[k],
    ),
  ]));
}

/**
 * Computes the features of `layers` for every example of `source`, once, in
 * batches that fit the memory budget, and keeps them as data sources (in JS
 * memory, no tensors held).
 *
 * @param net The model.
 * @param source The images (in the source's range, mapped into the model's
 *   input space as the Net's contract says).
 * @param options Layers, pooling, batch size.
 * @returns One source per layer, in the order asked, with the source's labels
 *   and classes; each image is `[side, side, channels]` (`[1, 1, d]` for vectors).
 * @throws {RangeError} for unknown layers, or images that do not fit the model.
 */
export async function layerFeatures(
  net: Net,
  source: DataSource,
  options: FeatureOptions,
): Promise<Map<string, DataSource>> {
  return featureSources(await layerFeatureArrays(net, source, options), source);
}

/** A source over features in memory, with the value range they span. */
function featureSource(
  name: string,
  pixels: Float32Array,
  labels: Int32Array,
  shape: [number, number, number],
  of: DataSource,
  range: [number, number],
): DataSource {
  const base = arraySource({ name, pixels, labels, shape, classes: of.classes });
  return { ...base, range: pixels.length ? range : [0, 0] };
}
