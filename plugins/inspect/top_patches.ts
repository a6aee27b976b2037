/**
 * `top-patches` (inspect): the image patches that most strongly activate each
 * channel of a layer over a whole data set, as receptive-field crops (Girshick,
 * Donahue, Darrell & Malik, "Rich feature hierarchies for accurate object
 * detection and semantic segmentation", 2013: "each row displays the 16 strongest
 * activations for a particular pool5 unit"), and beside them the DeconvNet
 * projection of each of those activations back to pixel space (Zeiler & Fergus,
 * "Visualizing and Understanding Convolutional Networks", 2013: "the top 9
 * activations ... projected back to pixel space using the DeConvNet method, and
 * the corresponding image patches").
 *
 * The data set is streamed through the net in batches; per channel only the `k`
 * strongest images are kept (each image counts once per channel, at its strongest
 * position), so memory grows with `k x channels`, not with the data set. Only the
 * images of the final top-k are read again for the crops and the projections.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { rawToTensor, readImage } from "../../core/images/codecs.ts";
import { resize, toDisplay } from "../../core/images/display.ts";
import { grid } from "../../core/images/grids.ts";
import { type ReceptiveField, receptiveFields } from "../../core/receptive_field.ts";
import { gradient } from "../../core/gradients.ts";
import type { DataSource } from "../../core/data/source.ts";
import { datasetFor, NAMED_DATA } from "../../core/data/dataset_for.ts";
import { spatialLayer } from "../_layers.ts";
import { batchSizeFor } from "../../core/memory_budget.ts";
import { readAhead } from "../../core/data/prefetch.ts";
import { type Mergeable, mergeTopK } from "../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../core/jobs/sharded_job.ts";
// The sharded-job types this module's exports are made of, public beside them.
export type { Mergeable, StateArray, StatePayload } from "../../core/jobs/mergeable.ts";
export type { ShardSpec } from "../../core/jobs/shard_spec.ts";
export type { ScanResult, ShardedJob } from "../../core/jobs/sharded_job.ts";

/** The most images one forward or projection pass takes, whatever the budget allows. */
const MAX_BATCH = 64;

/** The parameters of the `top-patches` plugin: its schema, declared once. */
export const TOP_PATCHES_PARAMS = {
  layer: { type: "layer", help: "layer whose channels to rank (default: last conv layer)" },
  data: {
    type: "string",
    default: "held-out",
    help: "held-out (the run's --data, or a built-in model's own test images), a data set " +
      "name, or a folder of PNG/JPEG images",
  },
  count: {
    type: "integer",
    default: 1000,
    min: 1,
    help: "most images streamed (held-out: first N; folder: first N files by name)",
  },
  k: { type: "integer", default: 9, min: 1, max: 256, help: "activations kept per channel" },
  channels: {
    type: "numbers",
    default: [] as number[],
    help: "channels to show (default: the first few)",
  },
  maxChannels: {
    type: "integer",
    default: 8,
    min: 1,
    max: 4096,
    help: "how many channels when --channels is not given",
  },
  project: {
    type: "boolean",
    default: true,
    help: "also show each activation's DeconvNet projection to pixel space",
  },
  batchSize: {
    type: "integer",
    min: 1,
    max: 4096,
    help:
      `images per forward and projection pass (default: what fits the memory budget, at most ${MAX_BATCH})`,
  },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of each tile" },
} as const;

/** The `top-patches` plugin's parameter values, typed from {@linkcode TOP_PATCHES_PARAMS} (defaults there). */
export type TopPatchesOptions = ParamValues<typeof TOP_PATCHES_PARAMS>;

/** The largest side of a tile in the figure, in pixels. */
const TILE_MAX = 160;

/** Colour of the parts of a receptive field that lie outside the image. */
const OUTSIDE: readonly [number, number, number] = [0.35, 0.55, 0.85];

/** One kept activation: its value, the image (global index in the data set) and the unit. */
export interface TopPatchHit {
  /** The activation (the channel's strongest in that image). */
  value: number;
  /** The image's global index in the data set. */
  image: number;
  /** The unit's row in the layer. */
  row: number;
  /** The unit's column in the layer. */
  col: number;
}

/** A data set streamed batch by batch, readable again by index. */
interface ImageSource {
  /** What it is, for messages and titles. */
  describe: string;
  /** Number of images (an upper bound for folders: unreadable files are skipped). */
  total: number;
  /** Images `[start, start + n)` that could be read, with their indices; `warn` hears of the others. */
  batch(
    start: number,
    n: number,
    warn: (message: string) => void,
  ): Promise<{ pixels?: tf.Tensor4D; indices: number[] }>;
  /** The images of these indices, in this order. */
  load(indices: readonly number[]): Promise<tf.Tensor4D>;
  /** A short name of one image. */
  name(index: number): string;
}

/** The first `count` images of a labelled data set (their labels are not needed here). */
function dataSetSource(data: DataSource, count: number): ImageSource {
  const total = Math.min(count, data.size);
  const images = async (indices: readonly number[]) => {
    const { x, y } = await data.batch(indices);
    y.dispose();
    return x;
  };
  return {
    describe: `the first ${total} images of ${data.name}`,
    total,
    async batch(start, n) {
      const indices = range(start, start + n);
      return { pixels: await images(indices), indices };
    },
    load: images,
    name: (i) => `${data.name} image ${i}`,
  };
}

async function folderSource(net: Net, dir: string, count: number): Promise<ImageSource> {
  let files: string[] = [];
  try {
    const stat = await Deno.stat(dir);
    if (!stat.isDirectory) throw new Error("not a folder");
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /\.(png|jpe?g)$/i.test(e.name)) files.push(e.name);
    }
  } catch (err) {
    throw new RangeError(
      `top-patches: cannot read the data folder "${dir}" (${(err as Error).message}); ` +
        `give data=<folder of PNG/JPEG images> or data=held-out`,
    );
  }
  if (files.length === 0) {
    throw new RangeError(
      `top-patches: the data folder "${dir}" has no PNG or JPEG images; add some or give data=held-out`,
    );
  }
  files = files.sort().slice(0, count);
  const { height, width, channels } = net.input;
  const read = async (i: number): Promise<tf.Tensor3D> => {
    const raw = await readImage(`${dir.replace(/\/+$/, "")}/${files[i]}`);
    return tf.tidy(() => {
      const px = rawToTensor(raw, channels === 1 ? 1 : 3);
      return raw.height === height && raw.width === width
        ? px
        : resize(px, height, width, "bilinear").clipByValue(0, 1) as tf.Tensor3D;
    });
  };
  return {
    describe: `${files.length} images of ${dir}`,
    total: files.length,
    async batch(start, n, warn) {
      const tiles: tf.Tensor3D[] = [];
      const indices: number[] = [];
      try {
        for (let i = start; i < start + n; i++) {
          try {
            tiles.push(await read(i));
            indices.push(i);
          } catch (err) {
            warn(`skipped "${files[i]}": ${(err as Error).message}`);
          }
        }
        return { pixels: tiles.length ? tf.stack(tiles) as tf.Tensor4D : undefined, indices };
      } finally {
        tf.dispose(tiles);
      }
    },
    async load(indices) {
      const tiles: tf.Tensor3D[] = [];
      try {
        for (const i of indices) tiles.push(await read(i));
        return tf.stack(tiles) as tf.Tensor4D;
      } finally {
        tf.dispose(tiles);
      }
    },
    name: (i) => files[i],
  };
}

/** Whether `dir` is a folder with class subfolders (an ImageFolder) and no images of its own. */
async function hasClassFolders(dir: string): Promise<boolean> {
  let folders = false;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /\.(png|jpe?g)$/i.test(e.name)) return false;
      if (e.isDirectory && !e.name.startsWith(".")) folders = true;
    }
  } catch {
    return false; // folderSource names the problem
  }
  return folders;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** The channels asked for, checked against the layer. */
function chosenChannels(
  list: readonly number[],
  max: number,
  available: number,
  layer: string,
): number[] {
  if (list.length === 0) return range(0, Math.min(max, available));
  for (const c of list) {
    if (!Number.isInteger(c) || c < 0 || c >= available) {
      throw new RangeError(
        `top-patches: channel ${c} does not exist; layer "${layer}" has channels 0 to ${
          available - 1
        }`,
      );
    }
  }
  return [...list];
}

/**
 * The top-left corner of a unit's receptive field in input pixels, not clipped
 * to the image (the same window as `unitWindow`, before its clipping).
 */
function fieldOrigin(rf: ReceptiveField, row: number, col: number): [number, number] {
  const cy = rf.start[0] + row * rf.jump[0];
  const cx = rf.start[1] + col * rf.jump[1];
  return [Math.round(cy - (rf.size[0] - 1) / 2), Math.round(cx - (rf.size[1] - 1) / 2)];
}

/**
 * Crops `[fh, fw]` windows out of a batch, exactly (no resampling): window `i`
 * comes from image `which[i]` at `origins[i]`; parts outside the image take
 * `outside`. One padded copy and one `gatherND`.
 */
function cropWindows(
  images: tf.Tensor4D,
  which: readonly number[],
  origins: readonly [number, number][],
  size: [number, number],
  outside: number,
): tf.Tensor4D {
  const [fh, fw] = size;
  const [, h, w] = images.shape;
  const padY = Math.max(0, ...origins.map(([y]) => -y), ...origins.map(([y]) => y + fh - h));
  const padX = Math.max(0, ...origins.map(([, x]) => -x), ...origins.map(([, x]) => x + fw - w));
  // The index tensors are 3 ints per cropped pixel: a few windows at a time, so
  // that the fields of real-size nets (483x483) do not take gigabytes at once.
  const chunk = Math.max(1, Math.floor(4_000_000 / (fh * fw)));
  return tf.tidy(() => {
    const padded = tf.pad(images, [[0, 0], [padY, padY], [padX, padX], [0, 0]], outside);
    const parts: tf.Tensor4D[] = [];
    for (let s = 0; s < which.length; s += chunk) {
      const ws = which.slice(s, s + chunk), os = origins.slice(s, s + chunk);
      parts.push(tf.tidy(() => {
        const m = ws.length;
        const n = tf.tensor1d([...ws], "int32").reshape([m, 1, 1, 1]).tile([1, fh, fw, 1]);
        const y0 = tf.tensor1d(os.map(([y]) => y + padY), "int32").reshape([m, 1, 1, 1]);
        const x0 = tf.tensor1d(os.map(([, x]) => x + padX), "int32").reshape([m, 1, 1, 1]);
        const ys = y0.add(tf.range(0, fh, 1, "int32").reshape([1, fh, 1, 1])).tile([1, 1, fw, 1]);
        const xs = x0.add(tf.range(0, fw, 1, "int32").reshape([1, 1, fw, 1])).tile([1, fh, 1, 1]);
        return tf.gatherND(padded, tf.concat([n, ys, xs], 3)) as tf.Tensor4D;
      }));
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts) as tf.Tensor4D;
  });
}

/** Merges a batch's candidates into the kept top-k of one channel (ties: lower image first). */
function mergeTop(kept: TopPatchHit[], fresh: TopPatchHit[], k: number): TopPatchHit[] {
  return mergeTopK(kept, fresh, k, (h) => [-h.value, h.image]);
}

/**
 * The mergeable state of `top-patches`: per channel the kept top-k (value,
 * global image index, unit), the number of images read, the warnings of the
 * images that could not be read. Merging keeps the top-k of the union under
 * the order (value, then lower image), so any split gives the same lists.
 */
export interface TopPatchesState {
  /** Activations kept per channel. */
  k: number;
  /** Per chosen channel, its top-k, strongest first. */
  hits: TopPatchHit[][];
  /** Images read. */
  seen: number;
  /** Images skipped, with why. */
  warnings: string[];
}

/** The state type of `top-patches`: top-k lists merged exactly, counts added. */
export const TOP_PATCHES_STATE: Mergeable<TopPatchesState> = {
  merge(a, b) {
    if (a.k !== b.k || a.hits.length !== b.hits.length) {
      throw new RangeError(
        `top-patches: cannot merge states of k = ${a.k} and ${b.k} over ${a.hits.length} and ` +
          `${b.hits.length} channels`,
      );
    }
    return {
      k: a.k,
      hits: a.hits.map((row, c) => mergeTop(row, b.hits[c], a.k)),
      seen: a.seen + b.seen,
      warnings: [...a.warnings, ...b.warnings],
    };
  },
  encode: (s) => ({
    json: {
      k: s.k,
      seen: s.seen,
      warnings: s.warnings,
      hits: s.hits.map((row) => row.map((h) => [h.value, h.image, h.row, h.col])),
    },
    arrays: {},
  }),
  decode({ json }) {
    const j = json as { k: number; seen: number; warnings: string[]; hits: number[][][] };
    if (!j || !Array.isArray(j.hits) || typeof j.k !== "number") {
      throw new RangeError("top-patches: the state file holds no top-k lists");
    }
    return {
      k: j.k,
      seen: j.seen,
      warnings: j.warnings ?? [],
      hits: j.hits.map((row) =>
        row.map(([value, image, r, c]) => ({ value, image, row: r, col: c }))
      ),
    };
  },
};

/** What scan and finish both need: the layer, its channels, the source, the batch. */
async function setup(ctx: Context, p: TopPatchesOptions) {
  const { net } = ctx;
  const batchSize = p.batchSize ??
    batchSizeFor(net, MAX_BATCH, {
      memoryMB: ctx.memoryMB,
      pass: p.project ? "gradient" : "forward",
    });
  const layer = spatialLayer(net, p.layer, "top-patches", "last");
  const info = net.layer(layer);
  const [lh, lw, lc] = info.outputShape;
  const channels = chosenChannels(p.channels, p.maxChannels, lc, layer);
  const rf = receptiveFields(net).get(layer)!;
  // "held-out" is the run's data set; a data set's name or a folder of
  // class subfolders goes through datasetFor; any other folder is read flat.
  const source = p.data === "held-out"
    ? dataSetSource(await ctx.data(), p.count)
    : p.data in NAMED_DATA || await hasClassFolders(p.data)
    ? dataSetSource(await datasetFor(net, p.data), p.count)
    : await folderSource(net, p.data, p.count);
  if (p.k > source.total) {
    throw new RangeError(
      `top-patches: k = ${p.k} is larger than the data set (${source.describe}); ` +
        `lower k or give more images (count)`,
    );
  }
  return { batchSize, layer, lh, lw, lc, channels, rf, source };
}

/**
 * Streams shard `shard` of the data set through the net: per batch, each
 * image's strongest position per channel, then the batch's top-k images per
 * channel, merged into the kept top-k. Image indices are global.
 */
async function scan(
  ctx: Context,
  p: TopPatchesOptions,
  shard: ShardSpec,
): Promise<ScanResult<TopPatchesState>> {
  const { net } = ctx;
  const { batchSize, layer, lh, lw, lc, channels, source } = await setup(ctx, p);
  const [lo, hi] = shardRange(source.total, shard);
  const projTotal = p.project && shard.count === 1 ? channels.length * p.k : 0;
  const work = hi - lo + projTotal;
  const warnings: string[] = [];
  let kept: TopPatchHit[][] = channels.map(() => []);
  let seen = 0;
  const chIndex = tf.tensor1d(channels, "int32");
  const allChannels = channels.length === lc && channels.every((c, i) => c === i);
  try {
    // The next batch is read (and its files decoded) while this one runs.
    const reads = readAhead(
      Math.ceil((hi - lo) / batchSize),
      (r) => {
        const start = lo + r * batchSize;
        // Each read's warnings join the list in batch order, whenever the read ends.
        const warned: string[] = [];
        return source.batch(start, Math.min(batchSize, hi - start), (m) => warned.push(m))
          .then((got) => ({ ...got, start, warned }));
      },
      { dispose: (got) => got.pixels?.dispose() },
    );
    for await (const { pixels, indices, start, warned } of reads) {
      warnings.push(...warned);
      const n = Math.min(batchSize, hi - start);
      if (pixels) {
        const b = indices.length;
        const kk = Math.min(p.k, b);
        const [values, picks, where] = tf.tidy(() => {
          const x = net.fromPixels(pixels);
          pixels.dispose();
          const act = net.forward(x, { taps: [layer], stopAtTaps: true }).taps[layer];
          // Reduce every channel, then pick the chosen rows of the small [lc, b]
          // results: a gather along the channel axis of the activation itself
          // is a slow innermost-axis copy on WASM.
          const flat = act.reshape([b, lh * lw, lc]);
          const pick = (t: tf.Tensor) => (allChannels ? t : t.gather(chIndex));
          const best = pick(flat.max(1).transpose()) as tf.Tensor2D; // [channels, b]
          const at = pick(flat.argMax(1).transpose().toInt()); // [channels, b]
          const top = tf.topk(best, kk);
          // at[c, top.indices[c, j]], as a flat gather (WASM's batched gather breaks here).
          const rows = tf.range(0, channels.length * b, b, "int32").reshape([channels.length, 1]);
          const where = tf.gather(at.reshape([-1]), top.indices.add(rows).reshape([-1]));
          return [top.values, top.indices, where];
        });
        const [v, i, w] = await Promise.all([values.data(), picks.data(), where.data()]);
        tf.dispose([values, picks, where]);
        kept = kept.map((old, c) => {
          const fresh: TopPatchHit[] = [];
          for (let j = 0; j < kk; j++) {
            const o = c * kk + j;
            const pos = w[o];
            fresh.push({
              value: v[o],
              image: indices[i[o]],
              row: Math.floor(pos / lw),
              col: pos % lw,
            });
          }
          return mergeTop(old, fresh, p.k);
        });
        seen += b;
      }
      ctx.progress(Math.min(start + n, hi) - lo, work);
    }
  } finally {
    chIndex.dispose();
  }
  return {
    value: { k: p.k, hits: kept, seen, warnings },
    data: { name: source.describe, size: source.total },
  };
}

/** The crops, projections, figure and table of the merged top-k. */
async function finish(
  ctx: Context,
  p: TopPatchesOptions,
  state: TopPatchesState,
): Promise<Result> {
  const { net } = ctx;
  const { batchSize, layer, channels, rf, source } = await setup(ctx, p);
  for (const w of state.warnings) ctx.warn(w);
  const { seen } = state;
  const kept = state.hits;
  const projTotal = p.project ? channels.length * p.k : 0;
  const work = source.total + projTotal;
  if (seen < p.k) {
    throw new RangeError(
      `top-patches: k = ${p.k} is larger than the data set: only ${seen} of ` +
        `${source.describe} could be read; lower k or give more images`,
    );
  }

  // The images of the top-k, read again, each once.
  const hits = kept.flat();
  const unique = [...new Set(hits.map((h) => h.image))].sort((a, b) => a - b);
  const slot = new Map(unique.map((img, s) => [img, s]));
  const which = hits.map((h) => slot.get(h.image)!);
  const origins = hits.map((h) => fieldOrigin(rf, h.row, h.col));
  const [fh, fw] = rf.size;
  const cs = channels.length;
  const c = net.input.channels;
  const images = await source.load(unique);
  const result = new Result(
    "top-patches",
    `Top ${p.k} activations of ${layer} over ${source.describe}`,
  );
  try {
    const raw = cropWindows(images, which, origins, [fh, fw], -1);
    const patches = tf.tidy(() => raw.relu().reshape([cs, p.k, fh, fw, c]));
    result.tensor("values", tf.tensor2d(hits.map((h) => h.value), [cs, p.k]));
    result.tensor(
      "positions",
      tf.tensor3d(hits.flatMap((h) => [h.image, h.row, h.col]), [cs, p.k, 3], "int32"),
    );
    result.tensor("patches", patches);
    let projections: tf.Tensor | undefined;
    if (p.project) {
      const parts: tf.Tensor4D[] = [];
      try {
        for (let s = 0; s < hits.length; s += batchSize) {
          const part = hits.slice(s, s + batchSize);
          parts.push(deconvProjection(
            net,
            layer,
            images,
            which.slice(s, s + batchSize),
            part.map((h, j) => [h.row, h.col, channels[Math.floor((s + j) / p.k)]]),
            origins.slice(s, s + batchSize),
            [fh, fw],
          ));
          ctx.progress(source.total + Math.min(s + batchSize, hits.length), work);
        }
        projections = tf.tidy(() => tf.concat(parts).reshape([cs, p.k, fh, fw, c]));
      } finally {
        tf.dispose(parts);
      }
      result.tensor("projections", projections);
    }
    // Fields of deep layers of real-size nets reach the whole image (483 pixels in a
    // ResNet-50): tiles larger than TILE_MAX are shrunk before the figure is drawn
    // and never upscaled, or the figure alone would take gigabytes.
    const big = Math.max(fh, fw);
    const [th, tw] = big > TILE_MAX
      ? [Math.round((fh * TILE_MAX) / big), Math.round((fw * TILE_MAX) / big)]
      : [fh, fw];
    const tileScale = Math.max(1, Math.min(p.scale, Math.floor(TILE_MAX / Math.max(th, tw))));
    const picture = tf.tidy(() => {
      const shrink = (t: tf.Tensor) =>
        big > TILE_MAX
          ? tf.image.resizeNearestNeighbor(t.reshape([-1, fh, fw, c]) as tf.Tensor4D, [th, tw])
          : t.reshape([-1, fh, fw, c]) as tf.Tensor4D;
      return figure(shrink(raw), projections && shrink(projections), cs, p.k, [th, tw], c);
    });
    try {
      const labels: string[] = [];
      kept.forEach((row, ci) => {
        const valueLabels = row.map((h, j) =>
          `${j === 0 ? `c${channels[ci]} ` : ""}${formatValue(h.value)}`
        );
        labels.push(...valueLabels);
        if (p.project) labels.push(...row.map(() => "deconv"));
      });
      const tiles = tf.tidy(() =>
        grid(picture, { cols: p.project ? 2 * p.k : p.k, scale: tileScale })
      );
      await result.addImage(
        `${layer}`,
        tiles,
        `${layer}, top ${p.k} of ${seen} images: one row per channel, the ${p.k} strongest ` +
          `activations over ${source.describe} as ${fh}x${fw} receptive-field crops (blue: ` +
          "outside the image), labelled by channel and activation" +
          (p.project ? ", then their DeconvNet projections to pixel space" : ""),
        { tiles: labels, cols: p.project ? 2 * p.k : p.k },
      );
      tiles.dispose();
    } finally {
      picture.dispose();
    }
    raw.dispose();
  } catch (err) {
    result.dispose();
    throw err;
  } finally {
    images.dispose();
  }
  result.figure("layer", layer).figure("channels", cs).figure("k", p.k)
    .figure("images", seen).figure("fieldHeight", fh).figure("fieldWidth", fw);
  result.table(
    "Images of each channel's top activations (strongest first)",
    ["channel", "strongest", "images"],
    kept.map((row, ci) => [
      channels[ci],
      row[0].value,
      row.map((h) => source.name(h.image)).join(", "),
    ]),
  );
  return result;
}

/** `top-patches` as a sharded job: scan slices, merge top-k lists, finish once. */
export const topPatchesJob: ShardedJob<typeof TOP_PATCHES_PARAMS, TopPatchesState> = {
  get plugin() {
    return topPatches;
  },
  state: TOP_PATCHES_STATE,
  settings: ["batchSize", "scale"],
  async dataOf(ctx, p) {
    const { source } = await setup(ctx, p);
    return { name: source.describe, size: source.total };
  },
  scan,
  finish,
};

/** The `top-patches` plugin. */
export const topPatches: Plugin<typeof TOP_PATCHES_PARAMS> = definePlugin({
  name: "top-patches",
  family: "inspect",
  summary: "Per channel, the k strongest patches of a data set with DeconvNet projections",
  params: TOP_PATCHES_PARAMS,
  resultShape(net, p) {
    const layer = spatialLayer(net, p.layer, "top-patches", "last");
    const info = net.layer(layer);
    const cs = chosenChannels(p.channels, p.maxChannels, info.outputShape[2], layer).length;
    const rf = receptiveFields(net).get(layer)!;
    const patch = [cs, p.k, rf.size[0], rf.size[1], net.input.channels];
    return {
      values: [cs, p.k],
      positions: [cs, p.k, 3],
      patches: patch,
      ...(p.project ? { projections: patch } : {}),
    };
  },
  demo: [{ count: 500, maxChannels: 8 }],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});

function formatValue(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * DeconvNet projections of single activations: for entry `i`, the gradient under
 * the `deconv` rule of unit `units[i]` (row, col, channel) of `layer` for image
 * `which[i]`, with every other activation of the layer zeroed, w.r.t. the input,
 * cropped to the unit's field. One batched gradient pass.
 */
function deconvProjection(
  net: Net,
  layer: string,
  images: tf.Tensor4D,
  which: readonly number[],
  units: readonly [number, number, number][],
  origins: readonly [number, number][],
  size: [number, number],
): tf.Tensor4D {
  const [lh, lw, lc] = net.layer(layer).outputShape;
  const b = which.length;
  return tf.tidy(() => {
    const x = net.fromPixels(tf.gather(images, tf.tensor1d([...which], "int32")));
    const flat = units.map(([r, c, ch]) => (r * lw + c) * lc + ch);
    const keep = tf.oneHot(tf.tensor1d(flat, "int32"), lh * lw * lc).toFloat()
      .reshape([b, lh, lw, lc]);
    const { grad, value } = gradient(
      net,
      x,
      {
        name: `sum(${layer})`,
        taps: [layer],
        perImage: ({ result }) => result.taps[layer].reshape([b, -1]).sum(1) as tf.Tensor1D,
      },
      { rule: "deconv", edits: { [layer]: (a) => a.mul(keep) } },
    );
    value.dispose();
    return cropWindows(grad as tf.Tensor4D, range(0, b), origins, size, 0);
  });
}

/**
 * The figure's tiles, channel after channel: the k crops (outside the image in
 * the OUTSIDE colour), then the k projections (symmetric, each on its own scale).
 */
function figure(
  raw: tf.Tensor4D,
  projections: tf.Tensor | undefined,
  cs: number,
  k: number,
  [fh, fw]: [number, number],
  c: number,
): tf.Tensor4D {
  const outside = raw.slice([0, 0, 0, 0], [-1, -1, -1, 1]).less(0).toFloat();
  const rgb = (t: tf.Tensor4D) => (c === 1 ? t.tile([1, 1, 1, 3]) : t);
  const paint = (t: tf.Tensor4D) =>
    rgb(t).mul(tf.sub(1, outside)).add(outside.mul(tf.tensor1d([...OUTSIDE])));
  const crops = paint(raw.relu()).reshape([cs, k, fh, fw, 3]);
  if (!projections) return crops.reshape([cs * k, fh, fw, 3]);
  const shown = toDisplay(projections.reshape([cs * k, fh, fw, c]) as tf.Tensor4D, {
    mode: "symmetric",
    perItem: true,
  });
  const proj = paint(shown).reshape([cs, k, fh, fw, 3]);
  return tf.concat([crops, proj], 1).reshape([cs * 2 * k, fh, fw, 3]);
}
