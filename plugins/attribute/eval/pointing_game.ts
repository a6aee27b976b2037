/**
 * `pointing-game` (attribute, evaluation): the pointing game of Zhang, Bargal,
 * Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by Excitation
 * Backprop" (ECCV 2016), on the built-in held-out canvases: each canvas holds one
 * digit among faint fragments of others, with the digit's box known. A method
 * scores a hit when the maximum of its map (for the digit's true class) falls
 * inside the box (grown by `tolerance` pixels). The baseline points at a random
 * pixel: its hit rate is the box's share of the canvas on average, reported both
 * as drawn with the run's seed and as expected. A second reference needs no model:
 * the brightest pixel of the canvas (the digit is drawn brighter than the
 * clutter), which says how much of a hit rate class-agnostic edge or intensity
 * detectors get for free.
 *
 * With `clutter` 1 the fragments are as bright as the digit, so that intensity
 * alone no longer finds it.
 *
 * Attribution methods are attribution plugins named in `methods` and run through
 * `ctx.runOn`, so user plugins take part like built-in ones. The model must take
 * 64x64x1 canvases (the built-in canvas model); for other models the result only
 * says so.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { type Context, definePlugin, type InputImages, type Plugin } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import type { Mergeable } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
import { exampleRandom } from "../../../core/jobs/seeds.ts";
import { Result } from "../../../core/result.ts";
import { CANVAS_SIZE } from "../../../core/datasets.ts";
import type { Box } from "../../../core/images/grids.ts";
import { attributionMap } from "../attribution.ts";
import { chunks, readOnce } from "../batches.ts";
import { batchSizeFor } from "../../../core/memory_budget.ts";

/** The most canvases one attribution call takes, whatever the budget allows. */
const MAX_BATCH = 50;
import {
  attributeChunk,
  disposeEvaluationImages,
  EVALUATION_PARAMS,
  evaluationImages,
  evaluationSet,
  methodList,
  parseMethodParams,
} from "./evaluation.ts";
import { attributionColorbar, attributionTiles, renderAttribution } from "../figures.ts";

/** The methods scored by default. */
export const POINTING_METHODS =
  "saliency,guided-backprop,grad-cam,guided-grad-cam,integrated-gradients,smoothgrad,deconvnet";

/** The parameters of the `pointing-game` plugin: its schema, declared once. */
export const POINTING_GAME_PARAMS = {
  methods: { ...EVALUATION_PARAMS.methods, default: POINTING_METHODS },
  methodParams: EVALUATION_PARAMS.methodParams,
  count: { type: "integer", default: 200, min: 1, max: 2000, help: "held-out canvases" },
  tolerance: { type: "integer", default: 0, min: 0, max: 64, help: "pixels a box is grown by" },
  batchSize: {
    type: "integer",
    min: 1,
    max: 2000,
    help: `canvases per call (default: what fits the memory budget, at most ${MAX_BATCH})`,
  },
  clutter: {
    type: "number",
    default: 0.5,
    min: 0,
    max: 1,
    help: "clutter brightness vs the digit (0.5: built-in canvases; 1: as bright)",
  },
  show: { type: "integer", default: 6, min: 0, max: 32, help: "canvases drawn per method" },
} as const;

/** The schema type of the `pointing-game` plugin's parameters. */
export type PointingGameParams = typeof POINTING_GAME_PARAMS;

/** The `pointing-game` plugin's parameter values, typed from {@linkcode POINTING_GAME_PARAMS}. */
export type PointingGameOptions = ParamValues<typeof POINTING_GAME_PARAMS>;

/**
 * Whether each point falls in its box grown by `tolerance`.
 *
 * @param points `[row, col]` per image.
 * @param boxes One box per image.
 * @param tolerance Pixels added on every side.
 * @returns One boolean per image.
 */
export function pointHits(
  points: readonly (readonly [number, number])[],
  boxes: readonly Box[],
  tolerance = 0,
): boolean[] {
  return points.map(([r, c], i) => {
    const b = boxes[i];
    return r >= b.y0 - tolerance && r < b.y1 + tolerance && c >= b.x0 - tolerance &&
      c < b.x1 + tolerance;
  });
}

/**
 * The mergeable state of `pointing-game` over a slice of the canvases: hit
 * counts per method, of the random pixel and of the brightest pixel, the sum
 * of the random baseline's expected rate, and the number of canvases. Counts
 * add exactly; the drawn canvases of the report are made again by `finish`.
 */
export interface PointingGameState {
  /** The methods, in order. */
  methods: string[];
  /** What the canvases are, for the table. */
  source: string;
  /** Canvases counted. */
  count: number;
  /** Hits per method. */
  hits: number[];
  /** Hits of the random pixel. */
  randomHits: number;
  /** Hits of the brightest pixel. */
  brightHits: number;
  /** Sum over canvases of the box's share of the canvas (grown by the tolerance). */
  expectedSum: number;
  /** Whether the model takes no canvases (the result then only says so). */
  skipped?: string;
}

/** The state type of `pointing-game`: counts added. */
export const POINTING_GAME_STATE: Mergeable<PointingGameState> = {
  merge(a, b) {
    if (a.methods.join() !== b.methods.join()) {
      throw new RangeError("pointing-game: cannot merge states of other methods");
    }
    return {
      ...a,
      count: a.count + b.count,
      hits: a.hits.map((h, i) => h + b.hits[i]),
      randomHits: a.randomHits + b.randomHits,
      brightHits: a.brightHits + b.brightHits,
      expectedSum: a.expectedSum + b.expectedSum,
    };
  },
  encode: (s) => ({ json: s, arrays: {} }),
  decode({ json }) {
    const j = json as PointingGameState;
    if (!j || !Array.isArray(j.hits)) {
      throw new RangeError("pointing-game: the state file holds no hit counts");
    }
    return j;
  },
};

/** Why the pointing game cannot run on this model, or undefined. */
function refusal(ctx: Context): string | undefined {
  const { height, width, channels } = ctx.net.input;
  if (ctx.net.sidecar.name === "canvas") return undefined;
  return `pointing-game plays on the built-in ${CANVAS_SIZE}x${CANVAS_SIZE} canvases, ` +
    `whose digit boxes are known, with the built-in canvas model; this model ` +
    `(${height}x${width}x${channels}) has no such images. Run it with --model canvas.`;
}

/** Each map's maximum as `[row, col]`, for canvases `start .. start + count`. */
async function mapPeaks(
  ctx: Context,
  images: InputImages,
  classes: readonly number[],
  start: number,
  count: number,
  method: string,
  params: Record<string, unknown> | undefined,
): Promise<{ points: [number, number][]; attribution: tf.Tensor4D }> {
  const { width } = ctx.net.input;
  const a = await attributeChunk(ctx, images, classes, start, count, method, params);
  const best = tf.tidy(() => attributionMap(a).reshape([count, -1]).argMax(1));
  const points = Array.from(
    await readOnce(best),
    (v) => [Math.floor(v / width), v % width] as [number, number],
  );
  return { points, attribution: a };
}

/**
 * The hit counts of shard `shard` of the canvases, read a batch at a time
 * (memory bounded by the batch, not by the number of canvases).
 */
async function scan(
  ctx: Context,
  p: PointingGameOptions,
  shard: ShardSpec,
): Promise<ScanResult<PointingGameState>> {
  const { net } = ctx;
  const batchSize = p.batchSize ?? batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB });
  const methods = methodList(p.methods, "pointing-game");
  const extra = parseMethodParams(p.methodParams, "pointing-game");
  const { height, width } = net.input;
  const why = refusal(ctx);
  const state: PointingGameState = {
    methods,
    source: "",
    count: 0,
    hits: methods.map(() => 0),
    randomHits: 0,
    brightHits: 0,
    expectedSum: 0,
  };
  if (why) return { value: { ...state, skipped: why }, data: { name: "no canvases", size: 0 } };
  const set = await evaluationSet(ctx, p.count, "pointing-game", true, p.clutter);
  const total = set.count;
  const [lo, hi] = shardRange(total, shard);
  const n = hi - lo;
  state.source = set.source;
  state.count = n;
  const size = { name: set.source, size: total };
  let done = 0;
  for (const [start, count] of chunks(n, batchSize)) {
    const first = lo + start;
    const { images, boxes } = await set.read(first, first + count);
    try {
      const classes = images.labels;
      // The random baseline: the argmax of a map of i.i.d. noise is a uniform
      // pixel, drawn from the canvas's global index.
      const randomPoints = Array.from({ length: count }, (_, i) => {
        const rng = exampleRandom(ctx.seed, 0, first + i);
        return [rng.int(height), rng.int(width)] as [number, number];
      });
      state.randomHits += pointHits(randomPoints, boxes!, p.tolerance).filter(Boolean).length;
      state.expectedSum = boxes!.reduce((s, b) => {
        const t = p.tolerance;
        const h = Math.min(height, b.y1 + t) - Math.max(0, b.y0 - t);
        const w = Math.min(width, b.x1 + t) - Math.max(0, b.x0 - t);
        return s + (h * w) / (height * width);
      }, state.expectedSum);
      // A class-agnostic reference: the brightest pixel of the canvas (the digit is
      // drawn brighter than the clutter), which needs no model at all.
      const bright = tf.tidy(() => images.pixels.sum(3).reshape([count, -1]).argMax(1));
      const brightPoints = Array.from(
        await readOnce(bright),
        (v) => [Math.floor(v / width), v % width] as [number, number],
      );
      state.brightHits += pointHits(brightPoints, boxes!, p.tolerance).filter(Boolean).length;
      for (const [m, method] of methods.entries()) {
        const peak = await mapPeaks(ctx, images, classes, 0, count, method, extra[method]);
        peak.attribution.dispose();
        state.hits[m] += pointHits(peak.points, boxes!, p.tolerance).filter(Boolean).length;
        ctx.progress(++done, methods.length * Math.ceil(n / batchSize));
      }
    } finally {
      tf.dispose([images.pixels, images.x]);
    }
  }
  return { value: state, data: size };
}

/** The rates, table and drawn canvases of the merged counts. */
async function finish(
  ctx: Context,
  p: PointingGameOptions,
  s: PointingGameState,
): Promise<Result> {
  const r = new Result("pointing-game", "Pointing game on held-out canvases");
  if (s.skipped) {
    ctx.warn(s.skipped);
    return r.figure("skipped", true).note(s.skipped);
  }
  const { methods, count: n } = s;
  const extra = parseMethodParams(p.methodParams, "pointing-game");
  const randomRate = s.randomHits / n;
  const brightRate = s.brightHits / n;
  const rates = s.hits.map((h) => h / n);
  const rows: (string | number)[][] = methods.map((m, i) => [
    m,
    s.hits[i],
    n,
    rates[i],
    rates[i] / Math.max(randomRate, 1e-9),
  ]);
  methods.forEach((m, i) => r.figure(m, rates[i]));
  rows.push(["random pixel", s.randomHits, n, randomRate, 1]);
  rows.push([
    "brightest pixel (no model)",
    Math.round(brightRate * n),
    n,
    brightRate,
    brightRate / Math.max(randomRate, 1e-9),
  ]);
  r.figure("random", randomRate).figure("brightest", brightRate).figure(
    "randomExpected",
    s.expectedSum / n,
  ).figure("canvases", n)
    .figure("tolerance", p.tolerance);
  r.table(
    `Pointing game on ${s.source} (true class; hit: map maximum inside the digit's box` +
      `${p.tolerance ? ` grown by ${p.tolerance}px` : ""})`,
    ["method", "hits", "canvases", "hit rate", "x random"],
    rows,
  );
  r.tensor("hits", tf.tensor1d([...rates, randomRate]));
  // The drawn canvases: the first `show`, their maps made again here.
  const k = Math.min(p.show, n);
  if (k === 0) return r;
  const data = await evaluationImages(ctx, k, "pointing-game", true, p.clutter);
  try {
    const { images } = data;
    const boxes = data.boxes!;
    for (const method of methods) {
      const { points, attribution } = await mapPeaks(
        ctx,
        images,
        images.labels,
        0,
        k,
        method,
        extra[method],
      );
      const hits = pointHits(points, boxes, p.tolerance);
      const picture = tf.tidy(() =>
        renderAttribution(images.pixels, attribution, attributionMap(attribution), {
          boxes,
          points,
        })
      );
      attribution.dispose();
      const labels = images.names.map((name, i) => `${hits[i] ? "hit" : "miss"} ${name}`);
      try {
        await r.addImage(
          method,
          picture,
          `Pointing game, ${method}: per canvas the input, the signed attribution, the map ` +
            "and the map over the input with its maximum (cyan) and the digit's box (green)",
          {
            tiles: attributionTiles(labels, Math.min(k, 16)),
            cols: 4,
            colorbar: attributionColorbar("max over channels of |attribution|"),
          },
        );
      } finally {
        picture.dispose();
      }
    }
  } catch (err) {
    r.dispose();
    throw err;
  } finally {
    disposeEvaluationImages(data);
  }
  return r;
}

/** `pointing-game` as a sharded job: each shard counts its canvases' hits; counts add. */
export const pointingGameJob: ShardedJob<typeof POINTING_GAME_PARAMS, PointingGameState> = {
  get plugin() {
    return pointingGame;
  },
  state: POINTING_GAME_STATE,
  settings: ["batchSize", "show"],
  async dataOf(ctx, p) {
    if (refusal(ctx)) return { name: "no canvases", size: 0 };
    const set = await evaluationSet(ctx, p.count, "pointing-game", true, p.clutter);
    return { name: set.source, size: set.count };
  },
  scan,
  finish,
};

/** The `pointing-game` plugin. */
export const pointingGame: Plugin<typeof POINTING_GAME_PARAMS> = definePlugin({
  name: "pointing-game",
  family: "attribute",
  summary: "Pointing game: does each method's map peak inside the digit's box? (Zhang et al.)",
  params: POINTING_GAME_PARAMS,
  resultShape(net, p): Record<string, number[]> {
    const fits = net.sidecar.name === "canvas";
    return fits ? { hits: [methodList(p.methods, "pointing-game").length + 1] } : {};
  },
  demo: [{ count: 30 }, { clutter: 1, count: 30 }],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});
