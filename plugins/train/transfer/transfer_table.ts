/**
 * `transfer` (train): the lecture's 2x2 table of transfer learning, measured.
 * "You need a lot of data if you want to train/use CNNs": busted, or not,
 * cell by cell.
 *
 * A base ConvNet (five 3x3 convs, a 64-unit `fc1`) is trained
 * with `fit` on Fashion-MNIST classes 0-4 (T-shirt, trouser, pullover, dress,
 * coat) and cached in a folder. Two new tasks: the "similar" one, Fashion-MNIST
 * classes 5-9 (sandal, shirt, sneaker, bag, ankle boot: the same kind of
 * photographs, other objects), and the "different" one, the MNIST digits. For
 * 10, 100 and 1,000 training examples per class, each drawn under 3 seeds,
 * five strategies are measured by test accuracy:
 *
 * - `scratch`: the same architecture trained from random weights, at its
 *   best: the same shift-and-flip augmentation, step budget and cosine
 *   schedule as fine-tuning gets, its Adam rate chosen from `--learningRate`
 *   on a held-out fifth of the training draw, then trained on the whole draw;
 * - `linear-top`: softmax regression on the base's top layer (`fc1`);
 * - `stages`: the lecture's "linear classifiers from different stages":
 *   softmax regression on every probed layer (input pixels, convs, pools,
 *   `fc1`), the probes voting together (their probabilities averaged), each
 *   probe's L2 strength chosen from `--l2` on a held-out fifth of the draw
 *   (the best single stage there is reported, not used);
 * - `fine-tune-few` / `fine-tune-many`: the base nested in a new model, its
 *   last 2 weight layers (or all 6) trained and the rest frozen (frozen batch
 *   norm in inference mode), the head started from the top-layer probe
 *   (LP-FT), then trained with `fit` under the same augmentation, budget and
 *   schedule.
 *
 * Every choice (rates, L2) is made on the held-out fifth of the draw,
 * never on test images. Pilots on one draw of the similar target at 100 per
 * class (README, Transfer learning) found that what makes the base better
 * (width, batch norm, longer training) makes the same net trained from
 * scratch better by as much or more, so the base stays small.
 *
 * The advisor (`advisor.ts`) names the lecture's strategy for each cell from
 * the data per class and a measured similarity (the top layer's probe
 * accuracy over the best layer's, on the held-out fifth), and the report says
 * whether it picked the measured best transfer strategy.
 *
 * The experiment trains its own base and reads its own data: it does not use
 * the run's model (`--model`) at all. `--strategies` measures a subset (the
 * probes alone train nothing but the base, which is cached in `--cache`).
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { ParamValues } from "../../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Net, type Sidecar } from "../../../core/net.ts";
import { Result } from "../../../core/result.ts";
import { type DataSource, perClassIndices, subset } from "../../../core/data/source.ts";
import { fashionMnist } from "../../../core/data/fashion_mnist.ts";
import { mnistSource } from "../../../core/builtin/mnist.ts";
import { conv3x3 } from "../../../core/builtin/_layers.ts";
import { fit } from "../../../core/train/fit.ts";
import { shiftFlip } from "../../../core/train/shift_flip.ts";
import { evaluate } from "../../../core/train/metrics.ts";
import { loadNet, saveLayersModel } from "../../../core/load.ts";
import { mixSeed } from "../../../core/random.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { layerFeatures, probeableLayers } from "./features.ts";
import { type LinearProbe, probeAccuracy, probeEnsembleAccuracy, trainProbe } from "./probes.ts";
import { fineTune, lastLayersWithWeights, setHeadFromProbe, transferModel } from "./fine_tune.ts";
import { classSubset, drawPerClass } from "./splits.ts";
import type { Mergeable, StatePayload } from "../../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../../core/jobs/sharded_job.ts";
import { encodeModel, restoreModel } from "../../../core/jobs/model_state.ts";
import {
  adviseTransfer,
  measuredSimilarity,
  STRATEGY_NAMES,
  TRANSFER_STRATEGIES,
  type TransferStrategy,
} from "./advisor.ts";

/** The parameters of `transfer`. */
export const TRANSFER_PARAMS = {
  perClass: {
    type: "numbers",
    default: [10, 100, 1000] as number[],
    help: "training examples per class of the new tasks (MNIST has at most ~800)",
  },
  steps: {
    type: "numbers",
    default: [200, 600, 800] as number[],
    help: "optimizer steps of each scratch and fine-tuning run, one per perClass entry",
  },
  strategies: {
    type: "string",
    default: "all",
    help:
      "strategies to measure, comma-separated: all or scratch,linear-top,stages,fine-tune-few,fine-tune-many",
  },
  seeds: { type: "integer", default: 3, min: 1, max: 10, help: "draws per cell" },
  targets: {
    type: "enum",
    choices: ["both", "similar", "different"],
    default: "both",
    help: "similar (Fashion-MNIST 5-9), different (MNIST) or both",
  },
  testCount: { type: "integer", default: 2000, min: 10, help: "test images per target" },
  baseEpochs: { type: "integer", default: 4, min: 1, max: 50, help: "epochs of the base" },
  baseAugment: {
    type: "boolean",
    default: true,
    help: "train the base with shifts of up to 2 pixels and mirroring (the fashion recipe's)",
  },
  width: {
    type: "integer",
    default: 1,
    min: 1,
    max: 8,
    help: "channel multiplier of the base (and of scratch): 1 is 8/8/16/16/32 convs, fc1 64",
  },
  augment: {
    type: "boolean",
    default: true,
    help: "shift (2 pixels) and mirror the training draw in scratch and fine-tuning runs",
  },
  baseCount: {
    type: "integer",
    default: 30000,
    min: 10,
    max: 30000,
    help: "Fashion-MNIST 0-4 training images of the base",
  },
  few: { type: "integer", default: 2, min: 1, max: 6, help: "weight layers fine-tune-few trains" },
  many: {
    type: "integer",
    default: 6,
    min: 1,
    max: 6,
    help: "weight layers fine-tune-many trains",
  },
  learningRate: {
    type: "numbers",
    default: [0.003, 0.01] as number[],
    help: "peak Adam rates from scratch; with several, the best on the held-out fifth is used",
  },
  fineTuneRate: {
    type: "numbers",
    default: [0.002] as number[],
    help: "peak Adam rates of fine-tuning; with several, the best on the held-out fifth is used",
  },
  l2: {
    type: "numbers",
    default: [0.001, 0.01, 0.1] as number[],
    help: "L2 strengths tried per probe, the best chosen on a held-out fifth of the draw",
  },
  probeSteps: { type: "integer", default: 200, min: 1, help: "full-batch Adam steps per probe" },
  dims: { type: "integer", default: 2048, min: 1, help: "most features per probed layer" },
  cache: {
    type: "string",
    default: "out/transfer-base",
    help: "folder caching the trained base (none: train it every run)",
  },
} as const;

/** The `transfer` plugin's parameter values, typed from {@linkcode TRANSFER_PARAMS}. */
export type TransferOptions = ParamValues<typeof TRANSFER_PARAMS>;

const INPUT = {
  height: 28,
  width: 28,
  channels: 1,
  range: [0, 1] as [number, number],
  mean: [0],
  std: [1],
};

/**
 * The base's feature layers (conv1 .. fc1), initializers seeded: conv1, conv2
 * (8), pool1, conv3, conv4 (16), pool2, conv5 (32), pool3, flatten, fc1 (64),
 * each width times `width`. Small and without batch norm so that the 90
 * training runs of the table fit a busy 2-core machine (training-mode batch
 * norm doubled a step's time on WASM here, and on the pilots a batch-norm
 * base helped scratch more than transfer); the fine-tuning code's frozen
 * batch norm is tested on its own.
 *
 * @param seed Seed of the initializers.
 * @param width Channel (and fc1 unit) multiplier. @default 1
 * @returns The layers as a Sequential on 28x28x1 images in [0, 1].
 */
export function buildTransferFeatures(seed: number, width = 1): tf.Sequential {
  let s = seed * 1000 + 900;
  const m = tf.sequential({ name: "features" });
  m.add(conv3x3("conv1", 8 * width, ++s, [28, 28, 1]));
  m.add(conv3x3("conv2", 8 * width, ++s));
  m.add(tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }));
  m.add(conv3x3("conv3", 16 * width, ++s));
  m.add(conv3x3("conv4", 16 * width, ++s));
  m.add(tf.layers.maxPooling2d({ name: "pool2", poolSize: 2 }));
  m.add(conv3x3("conv5", 32 * width, ++s));
  m.add(tf.layers.maxPooling2d({ name: "pool3", poolSize: 2 }));
  m.add(tf.layers.flatten({ name: "flatten" }));
  m.add(tf.layers.dense({
    name: "fc1",
    units: 64 * width,
    activation: "relu",
    kernelInitializer: tf.initializers.heNormal({ seed: ++s }),
  }));
  return m;
}

/**
 * The whole classifier: {@linkcode buildTransferFeatures} then `logits` and `probs`.
 *
 * @param seed Seed of the initializers.
 * @param classes Output classes.
 * @param width Channel multiplier of the features. @default 1
 * @returns The model.
 */
export function buildTransferNet(seed: number, classes: number, width = 1): tf.Sequential {
  const m = buildTransferFeatures(seed, width);
  m.add(tf.layers.dense({
    name: "logits",
    units: classes,
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + 999 }),
  }));
  m.add(tf.layers.activation({ name: "probs", activation: "softmax" }));
  return m;
}

/**
 * The strategies a `--strategies` value names, in the report's order.
 *
 * @param list `all`, or strategy names separated by commas.
 * @returns The strategies.
 * @throws {RangeError} for an unknown name or none.
 */
export function chosenStrategies(list: string): TransferStrategy[] {
  if (list.trim() === "all") return [...TRANSFER_STRATEGIES];
  const names = list.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.filter((n) => !TRANSFER_STRATEGIES.includes(n as TransferStrategy));
  if (bad.length || names.length === 0) {
    throw new RangeError(
      `Unknown strategy "${bad[0] ?? list}": give all or some of ${TRANSFER_STRATEGIES.join(",")}`,
    );
  }
  return TRANSFER_STRATEGIES.filter((s) => names.includes(s));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Trains (or reads from the cache) the base; returns its feature weights and test accuracy. */
async function trainedBase(
  p: TransferOptions,
  seed: number,
  train: DataSource,
  test: DataSource,
  note: (s: string) => void,
): Promise<{ weights: Map<string, tf.Tensor[]>; accuracy: number; cached: boolean }> {
  const key = `base-v2-n${p.baseCount}-e${p.baseEpochs}${p.baseAugment ? "-aug" : ""}` +
    `${p.width === 1 ? "" : `-w${p.width}`}-s${seed}`;
  const dir = p.cache === "none" ? undefined : `${p.cache.replace(/\/+$/, "")}/${key}`;
  let model: tf.LayersModel | undefined;
  let accuracy: number;
  let cached = false;
  if (dir && await exists(`${dir}/model.json`)) {
    try {
      const net = await loadNet(dir);
      model = net.model as tf.LayersModel;
      accuracy = Number(net.sidecar.testAccuracy);
      cached = true;
    } catch (err) {
      note(`The cached base in ${dir} could not be read (${(err as Error).message}); retrained.`);
    }
  }
  if (!model) {
    const m = buildTransferNet(seed, 5, p.width);
    const data = subset(train, Array.from({ length: p.baseCount }, (_, i) => i), train.name);
    await fit(m, data, {
      epochs: p.baseEpochs,
      batchSize: 64,
      seed,
      optimizer: { name: "adam" },
      schedule: { kind: "cosine", learningRate: 0.002, finalFraction: 0.05 },
      logits: "logits",
      ...(p.baseAugment ? { augment: shiftFlip({ maxShift: 2, flip: true }) } : {}),
    });
    accuracy = (await evaluate(m, test)).accuracy;
    if (dir) {
      await saveLayersModel(m, dir, {
        name: "transfer-base",
        input: INPUT,
        labels: [...train.classes],
        logits: "logits",
        probs: "probs",
        testAccuracy: accuracy,
        data:
          `Fashion-MNIST classes 0-4, first ${p.baseCount} training images, ${p.baseEpochs} epochs`,
      });
    }
    model = m;
  }
  // The feature layers' weights by layer (getWeights lists trainable ones first).
  const weights = new Map<string, tf.Tensor[]>();
  for (const l of model.layers) {
    if (l.name !== "logits" && l.weights.length) {
      weights.set(l.name, l.getWeights().map((w) => w.clone()));
    }
  }
  model.dispose();
  return { weights, accuracy: accuracy!, cached };
}

/** A fresh copy of the trained feature layers. */
function featuresFrom(weights: ReadonlyMap<string, tf.Tensor[]>, width: number): tf.Sequential {
  const m = buildTransferFeatures(0, width);
  for (const [name, w] of weights) m.getLayer(name).setWeights(w);
  return m;
}

interface Target {
  key: "similar" | "different";
  title: string;
  pool: DataSource;
  test: DataSource;
}

function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

function std(v: readonly number[]): number {
  if (v.length < 2) return 0;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
}

/** The `transfer` plugin. */
export const transferTable: Plugin<typeof TRANSFER_PARAMS> = definePlugin({
  name: "transfer",
  family: "train",
  summary: "The lecture's transfer table measured: similar/different x little/much data",
  params: TRANSFER_PARAMS,
  needsImages: false,
  resultShape(_net, p) {
    return {
      accuracy: [
        p.targets === "both" ? 2 : 1,
        p.perClass.length,
        chosenStrategies(p.strategies).length,
      ],
    };
  },
  // The full table takes ~28 minutes on a busy 2-core machine (90 training runs and 540
  // probes); the demo measures one cell on a small base with one scratch rate.
  demo: [{
    perClass: [100],
    steps: [150],
    seeds: 1,
    targets: "similar",
    strategies: "scratch,linear-top,stages",
    baseCount: 3000,
    baseEpochs: 1,
    testCount: 500,
    probeSteps: 100,
    learningRate: [0.01],
    dims: 512,
  }],
  async run(ctx, p) {
    const { value } = await transferCells.scan(ctx, p, WHOLE);
    return await transferCells.finish(ctx, p, value);
  },
});

/** What one cell of the table (target x size x seed) measured. */
export interface TransferCell {
  /** `(target * sizes + size) * seeds + seed`. */
  cell: number;
  /** Test accuracy per strategy, in the report's order. */
  accuracy: number[];
  /** The measured similarity. */
  similarity: number;
  /** The earlier layer whose probe scored best on the held-out fifth. */
  stage: string;
  /** The draw's smallest class. */
  drawn: number;
  /** Optimizer steps of each training run. */
  steps: number;
  /** The scratch rate chosen on the held-out fifth (0 where scratch was not measured). */
  scratchRate?: number;
}

/**
 * The mergeable state of `transfer`: the cells a shard measured, by index,
 * the base's test accuracy, the notes, and the last fine-tuned model (from
 * the highest cell that fine-tuned). The merge is the union of the cells.
 */
export interface TransferState {
  /** The targets measured. */
  targets: { key: string; title: string; testSize: number }[];
  /** The cells, by index. */
  cells: TransferCell[];
  /** The base's test accuracy. */
  baseAccuracy: number;
  /** Whether every shard read the base from the cache. */
  baseCached: boolean;
  /** Notes, in order, each once. */
  notes: string[];
  /** The last fine-tuned model: its cell, sidecar, classes and weights. */
  model?: {
    cell: number;
    sidecar: Sidecar;
    classes: number;
    seed: number;
    weights: StatePayload;
  };
}

/** The state type of `transfer`: cells united by index, the later cell's model kept. */
export const TRANSFER_STATE: Mergeable<TransferState> = {
  merge(a, b) {
    const cells = [...a.cells, ...b.cells].sort((x, y) => x.cell - y.cell);
    const model = !a.model
      ? b.model
      : !b.model
      ? a.model
      : a.model.cell > b.model.cell
      ? a.model
      : b.model;
    return {
      ...a,
      targets: a.targets.length >= b.targets.length ? a.targets : b.targets,
      cells,
      baseCached: a.baseCached && b.baseCached,
      notes: [...new Set([...a.notes, ...b.notes])],
      ...(model ? { model } : {}),
    };
  },
  encode(s) {
    const { model, ...rest } = s;
    if (!model) return { json: rest, arrays: {} };
    const { weights, ...meta } = model;
    return { json: { ...rest, model: { ...meta, layers: weights.json } }, arrays: weights.arrays };
  },
  decode({ json, arrays }) {
    const j = json as Omit<TransferState, "model"> & {
      model?: Omit<NonNullable<TransferState["model"]>, "weights"> & { layers: unknown };
    };
    if (!j || !Array.isArray(j.cells) || !Array.isArray(j.targets)) {
      throw new RangeError("transfer: the state file holds no measured cells");
    }
    const { model, ...rest } = j;
    if (!model) return rest;
    const { layers, ...meta } = model;
    return { ...rest, model: { ...meta, weights: { json: layers, arrays } } };
  },
};

/**
 * `transfer` as a sharded job: the cells (target x size x seed, in that
 * order; each measures every strategy on its draw) are cut by index; shard i
 * measures its cells and writes their accuracies; the merge assembles the
 * table. Seeds come from the cell's indices, so merged shards give the
 * single run's table.
 */
export const transferJob: ShardedJob<typeof TRANSFER_PARAMS, TransferState> = {
  get plugin() {
    return transferTable;
  },
  state: TRANSFER_STATE,
  dataOf: (_ctx, p) => Promise.resolve(transferCellsData(p)),
  scan: (ctx, p, shard) => transferCells.scan(ctx, p, shard),
  finish: (ctx, p, s) => transferCells.finish(ctx, p, s),
};

function transferCellsData(p: TransferOptions): { name: string; size: number } {
  const targets = p.targets === "both" ? 2 : 1;
  return {
    name: `transfer cells: ${targets} targets x ${p.perClass.length} sizes x ${p.seeds} seeds`,
    size: targets * p.perClass.length * p.seeds,
  };
}

// Scan and finish sit in an object so that their bodies keep the plugin's layout.
const transferCells = {
  async scan(
    ctx: Context,
    p: TransferOptions,
    shard: ShardSpec,
  ): Promise<ScanResult<TransferState>> {
    if (p.perClass.length === 0 || p.perClass.length !== p.steps.length) {
      throw new RangeError(
        `transfer: give one --steps entry per --perClass entry (got ${p.perClass.length} ` +
          `sizes and ${p.steps.length} step counts), e.g. --perClass 10,100 --steps 60,150`,
      );
    }
    for (const [name, list] of [["perClass", p.perClass], ["steps", p.steps]] as const) {
      if (list.some((v) => !(Number.isInteger(v) && v >= 1))) {
        throw new RangeError(`transfer: --${name} takes positive integers, got ${list.join(",")}`);
      }
    }
    if (p.l2.length === 0 || p.l2.some((v) => !(v >= 0))) {
      throw new RangeError(`transfer: --l2 takes numbers >= 0, got ${p.l2.join(",")}`);
    }
    for (
      const [name, list] of [["learningRate", p.learningRate], [
        "fineTuneRate",
        p.fineTuneRate,
      ]] as const
    ) {
      if (list.length === 0 || list.some((v) => !(v > 0 && Number.isFinite(v)))) {
        throw new RangeError(
          `transfer: --${name} takes one or more rates > 0, got ${list.join(",") || "none"}, ` +
            "e.g. 0.003,0.01",
        );
      }
    }
    if (p.perClass.some((v) => v < 2)) {
      throw new RangeError("transfer: --perClass entries must be at least 2 (one is held out)");
    }
    const r = new Result("transfer", "Transfer learning: the 2x2 table, measured");
    const note = (s: string) => r.note(s);
    const fashionTrain = await fashionMnist("train");
    const fashionTest = await fashionMnist("test");
    const first = [0, 1, 2, 3, 4], second = [5, 6, 7, 8, 9];
    const baseTest = classSubset(fashionTest, first);
    const base = await trainedBase(
      p,
      ctx.seed,
      classSubset(fashionTrain, first),
      subset(baseTest, Array.from({ length: Math.min(p.testCount, baseTest.size) }, (_, i) => i)),
      note,
    );
    const targets: Target[] = [];
    const perClassTest = (s: DataSource) =>
      subset(s, perClassIndices(s, Math.ceil(p.testCount / s.classes.length)), `${s.name} test`);
    if (p.targets !== "different") {
      targets.push({
        key: "similar",
        title: "similar: Fashion-MNIST classes 5-9",
        pool: classSubset(fashionTrain, second),
        test: perClassTest(classSubset(fashionTest, second)),
      });
    }
    if (p.targets !== "similar") {
      targets.push({
        key: "different",
        title: "different: MNIST digits",
        pool: await mnistSource("train"),
        test: perClassTest(await mnistSource("heldOut")),
      });
    }
    const strategies = chosenStrategies(p.strategies);
    // acc[target][size][strategy] = one accuracy per seed.
    const acc: number[][][][] = targets.map(() =>
      p.perClass.map(() => strategies.map(() => [] as number[]))
    );
    const similarity: number[][][] = targets.map(() => p.perClass.map(() => [] as number[]));
    const stageLayer: string[][][] = targets.map(() => p.perClass.map(() => [] as string[]));
    const drawn: number[][] = targets.map(() => p.perClass.map(() => 0));
    const stepsRun: number[][] = targets.map(() => p.perClass.map(() => 0));
    const total = targets.length * p.perClass.length * p.seeds;
    const [lo, hi] = shardRange(total, shard);
    const cells: TransferCell[] = [];
    let done = 0;
    const weights = base.weights;
    let lastModel: { cell: number; classes: number; seed: number } | undefined;
    try {
      for (const [t, target] of targets.entries()) {
        const span = p.perClass.length * p.seeds;
        if (t * span >= hi || (t + 1) * span <= lo) continue;
        const k = target.pool.classes.length;
        const fnet = featuresFrom(weights, p.width);
        const net = Net.fromModel(fnet, { input: INPUT }, "transfer base features");
        const layers = probeableLayers(net);
        const top = "fc1";
        const featureOptions = { layers, dims: p.dims, memoryMB: ctx.memoryMB };
        const testFeatures = await layerFeatures(net, target.test, featureOptions);
        const probe = { steps: p.probeSteps };
        for (const [i, perClass] of p.perClass.entries()) {
          for (let s = 0; s < p.seeds; s++) {
            const cell = (t * p.perClass.length + i) * p.seeds + s;
            if (cell < lo || cell >= hi) continue;
            const seed = mixSeed(ctx.seed, t, i, s);
            const split = drawPerClass(target.pool, perClass, seed);
            const train = subset(target.pool, split.train, `${target.key} training draw`);
            drawn[t][i] = split.smallestClass;
            const feats = await layerFeatures(net, train, featureOptions);
            // A held-out fifth of the draw picks the stage and measures similarity.
            const inner = drawPerClass(
              feats.get(top)!,
              Math.max(1, Math.floor(perClass * 0.8)),
              seed + 1,
            );
            // Each layer's probe at each L2 strength on the held-out fifth: the best
            // strength per layer, then the best earlier layer.
            const valAcc = new Map<string, number>();
            const bestL2 = new Map<string, number>();
            // Each layer's best probe on the other four fifths: the heads of
            // fine-tuning's rate trials.
            const innerProbe = new Map<string, LinearProbe>();
            for (const layer of layers) {
              const f = feats.get(layer)!;
              const fit = subset(f, inner.train), held = subset(f, inner.rest);
              for (const l2 of p.l2) {
                const trained = await trainProbe(fit, { ...probe, l2 });
                const a = await probeAccuracy(trained, held);
                if (!(a <= (valAcc.get(layer) ?? -1))) {
                  valAcc.set(layer, a);
                  bestL2.set(layer, l2);
                  innerProbe.set(layer, trained);
                }
              }
            }
            const earlier = layers.filter((l) => l !== top);
            // The best single stage is reported, not used: on a fifth of a small draw
            // (20 images per class at 100 per class) the pick is noise (conv1 over
            // conv4 on a pilot, 3 points lower on test); every stage's probe votes.
            const stage = earlier.reduce((a, b) => valAcc.get(b)! > valAcc.get(a)! ? b : a);
            stageLayer[t][i].push(stage);
            similarity[t][i].push(measuredSimilarity(valAcc.get(top)!, [...valAcc.values()]));
            const fullProbe = (layer: string) =>
              trainProbe(feats.get(layer)!, { ...probe, l2: bestL2.get(layer)! });
            const topProbe = await fullProbe(top);
            const all: LinearProbe[] = [];
            for (const l of layers) all.push(l === top ? topProbe : await fullProbe(l));
            const stagesAcc = await probeEnsembleAccuracy(
              all,
              layers.map((l) => testFeatures.get(l)!),
            );
            const measured: Record<TransferStrategy, number> = {
              scratch: NaN,
              "linear-top": await probeAccuracy(topProbe, testFeatures.get(top)!),
              stages: stagesAcc,
              "fine-tune-few": NaN,
              "fine-tune-many": NaN,
            };
            // Every training run of the draw (scratch, fine-tuning, their rate trials
            // on four fifths) gets the same step budget, augmentation and schedule.
            const runOptions = (data: DataSource, rate: number) => {
              const batchSize = Math.min(32, Math.floor(data.size / 2));
              const perEpoch = Math.floor(data.size / batchSize);
              const epochs = Math.max(1, Math.round(p.steps[i] / perEpoch));
              return {
                epochs,
                batchSize,
                seed,
                optimizer: { name: "adam" as const },
                schedule: { kind: "cosine" as const, learningRate: rate, finalFraction: 0.02 },
                ...(p.augment ? { augment: shiftFlip({ maxShift: 2, flip: true }) } : {}),
                steps: epochs * perEpoch,
              };
            };
            stepsRun[t][i] = runOptions(train, 1).steps;
            const fitPart = subset(train, inner.train), heldPart = subset(train, inner.rest);
            // The rate whose run on four fifths scores best on the held-out fifth.
            const chooseRate = async (
              rates: readonly number[],
              trial: (data: DataSource, rate: number) => Promise<tf.LayersModel>,
            ): Promise<number> => {
              if (rates.length === 1) return rates[0];
              let best = rates[0], bestAcc = -1;
              for (const rate of rates) {
                const m = await trial(fitPart, rate);
                try {
                  const a = (await evaluate(m, heldPart)).accuracy;
                  if (a > bestAcc) [best, bestAcc] = [rate, a];
                } finally {
                  m.dispose();
                }
              }
              return best;
            };
            const trainScratch = async (data: DataSource, rate: number) => {
              const m = buildTransferNet(seed & 0xffff, k, p.width);
              try {
                const { steps: _, ...o } = runOptions(data, rate);
                await fit(m, data, { ...o, logits: "logits" });
                return m;
              } catch (err) {
                m.dispose();
                throw err;
              }
            };
            let scratchRate = 0;
            if (strategies.includes("scratch")) {
              scratchRate = await chooseRate(p.learningRate, trainScratch);
              const scratch = await trainScratch(train, scratchRate);
              try {
                measured.scratch = (await evaluate(scratch, target.test)).accuracy;
              } finally {
                scratch.dispose();
              }
            }
            for (
              const [which, layersToTrain] of [["fine-tune-few", p.few], [
                "fine-tune-many",
                p.many,
              ]] as const
            ) {
              if (!strategies.includes(which)) continue;
              const tune = async (data: DataSource, rate: number, head: LinearProbe) => {
                const m = transferModel(featuresFrom(weights, p.width), k, { seed });
                try {
                  setHeadFromProbe(m, head);
                  const { steps: _, ...o } = runOptions(data, rate);
                  await fineTune(m, data, {
                    ...o,
                    trainLast: lastLayersWithWeights(m, layersToTrain),
                    onWarning: (w) => ctx.warn(w),
                  });
                  return m;
                } catch (err) {
                  m.dispose();
                  throw err;
                }
              };
              const rate = await chooseRate(
                p.fineTuneRate,
                (data, r) => tune(data, r, innerProbe.get(top)!),
              );
              const model = await tune(train, rate, topProbe);
              try {
                measured[which] = (await evaluate(model, target.test)).accuracy;
                // The last fine-tuned model rides on the result (saved as
                // transfer-model/), for Part-1 plugins to explain.
                lastModel = { cell, classes: k, seed };
                r.setModel(model, {
                  name: "transfer-fine-tuned",
                  input: INPUT,
                  labels: [...target.pool.classes],
                  logits: "logits",
                  probs: "probs",
                  data: `${target.title}, ${perClass} per class, ${which}`,
                  testAccuracy: measured[which],
                });
              } catch (err) {
                model.dispose();
                throw err;
              }
            }
            strategies.forEach((st, j) => acc[t][i][j].push(measured[st]));
            cells.push({
              cell,
              accuracy: strategies.map((st) => measured[st]),
              similarity: similarity[t][i][similarity[t][i].length - 1],
              stage,
              drawn: drawn[t][i],
              steps: stepsRun[t][i],
              scratchRate,
            });
            ctx.progress(++done, hi - lo);
          }
        }
        fnet.dispose();
      }
    } catch (err) {
      r.dispose();
      throw err;
    } finally {
      tf.dispose([...weights.values()].flat());
    }
    // Only the shard of the job's last cell holds the model that rides on the result.
    const carried = lastModel && r.model && hi === total
      ? { lastModel, model: r.model, weights: await encodeModel(r.model.model, "model") }
      : undefined;
    const value: TransferState = {
      targets: targets.map((g) => ({ key: g.key, title: g.title, testSize: g.test.size })),
      cells,
      baseAccuracy: base.accuracy,
      baseCached: base.cached,
      notes: [...r.notes],
      ...(carried
        ? {
          model: {
            ...carried.lastModel,
            sidecar: { ...carried.model.sidecar },
            weights: carried.weights,
          },
        }
        : {}),
    };
    r.dispose();
    return { value, data: transferCellsData(p) };
  },

  // deno-lint-ignore require-await
  async finish(_ctx: Context, p: TransferOptions, s: TransferState): Promise<Result> {
    const r = new Result("transfer", "Transfer learning: the 2x2 table, measured");
    for (const n of s.notes) r.note(n);
    if (s.model) {
      const model = transferModel(buildTransferFeatures(0, p.width), s.model.classes, {
        seed: s.model.seed,
      });
      try {
        restoreModel(model, s.model.weights, "model");
      } catch (err) {
        model.dispose();
        throw err;
      }
      r.setModel(model, s.model.sidecar);
    }
    const strategies = chosenStrategies(p.strategies);
    const targets = s.targets.map((g) => ({ ...g, test: { size: g.testSize } }));
    const base = { accuracy: s.baseAccuracy, cached: s.baseCached };
    const cellAt = (t: number, i: number) =>
      s.cells.filter((c) => Math.floor(c.cell / p.seeds) === t * p.perClass.length + i);
    const acc = targets.map((_, t) =>
      p.perClass.map((_, i) => strategies.map((_, j) => cellAt(t, i).map((c) => c.accuracy[j])))
    );
    const similarity = targets.map((_, t) =>
      p.perClass.map((_, i) => cellAt(t, i).map((c) => c.similarity))
    );
    const stageLayer = targets.map((_, t) =>
      p.perClass.map((_, i) => cellAt(t, i).map((c) => c.stage))
    );
    const drawn = targets.map((_, t) => p.perClass.map((_, i) => cellAt(t, i).at(-1)!.drawn));
    const stepsRun = targets.map((_, t) => p.perClass.map((_, i) => cellAt(t, i).at(-1)!.steps));
    const scratchRates = targets.map((_, t) =>
      p.perClass.map((_, i) => {
        const chosen = cellAt(t, i).map((c) => c.scratchRate ?? 0).filter((v) => v > 0);
        return chosen.length ? [...new Set(chosen)].join(",") : "-";
      })
    );

    // The table, the advisor, the figures.
    const pct = (v: number) => Number((100 * v).toFixed(2));
    const rows: (string | number)[][] = [];
    let matches = 0, cells = 0;
    for (const [t, target] of targets.entries()) {
      for (const [i, perClass] of p.perClass.entries()) {
        const means = strategies.map((_, j) => mean(acc[t][i][j]));
        const stds = strategies.map((_, j) => std(acc[t][i][j]));
        const transfer = strategies.map((st, j) => [st, j] as const).filter(([st]) =>
          st !== "scratch"
        );
        const scratchJ = strategies.indexOf("scratch");
        const [bestSt, bestJ] = transfer.length
          ? transfer.reduce((a, b) => means[b[1]] > means[a[1]] ? b : a)
          : ["-", -1] as const;
        const gain = bestJ >= 0 && scratchJ >= 0
          ? Number((100 * (means[bestJ] - means[scratchJ])).toFixed(2))
          : "-";
        const sim = mean(similarity[t][i]);
        const advice = adviseTransfer({ perClass, similarity: sim });
        const advJ = strategies.indexOf(advice.strategy);
        const exact = advice.strategy === bestSt;
        const close = !exact && advJ >= 0 && bestJ >= 0 &&
          means[bestJ] - means[advJ] <= Math.max(stds[bestJ], stds[advJ]);
        if (exact) matches++;
        cells++;
        const overall = means.reduce((a, v, j) => v > means[a] ? j : a, 0);
        rows.push([
          target.key,
          perClass,
          drawn[t][i],
          stepsRun[t][i],
          ...strategies.map((_, j) => `${pct(means[j])} ± ${pct(stds[j])}`),
          strategies[overall],
          bestSt,
          gain,
          Number(sim.toFixed(3)),
          advice.strategy,
          exact ? "yes" : close ? "within noise" : advJ < 0 ? "not measured" : "no",
          [...new Set(stageLayer[t][i])].join(","),
          scratchRates[t][i],
        ]);
        r.figure(`${target.key}${perClass}Best`, bestSt);
        r.figure(`${target.key}${perClass}Gain`, gain);
        r.figure(`${target.key}${perClass}Advice`, advice.strategy);
      }
      r.addPlot(
        `${target.key}`,
        linePlot(
          strategies.map((st, j) => ({
            name: STRATEGY_NAMES[st],
            x: p.perClass.map(String),
            y: p.perClass.map((_, i) => 100 * mean(acc[t][i][j])),
            dashed: st === "scratch",
          })),
          {
            xLabel: "training examples per class",
            yLabel: "test accuracy (%)",
            title: `Transfer from Fashion-MNIST 0-4 to ${target.title.split(": ")[1]}`,
          },
        ),
        `Mean test accuracy over ${p.seeds} draws (${target.test.size} test images)`,
      );
    }
    const acc0 = pct(base.accuracy);
    const rates = (list: readonly number[]) =>
      list.length === 1
        ? String(list[0])
        : `chosen from ${list.join(",")} on a held-out fifth of the draw`;
    r.table(
      `Test accuracy (%, mean ± std over ${p.seeds} draws) of each strategy; base: Fashion-MNIST ` +
        `0-4, ${p.baseCount} images, ${p.baseEpochs} epochs` +
        `${p.baseAugment ? " (shifted and mirrored)" : ""}, width x${p.width}, test accuracy ` +
        `${acc0}%; scratch and fine-tuning: batches of 32 (half the draw when smaller), Adam ` +
        `on a cosine schedule${p.augment ? ", shifts of 2 pixels and mirroring" : ""}, ` +
        `scratch's peak rate ${rates(p.learningRate)}, fine-tuning's ${rates(p.fineTuneRate)}; ` +
        "stages: every layer's probe voting; gain = best transfer minus scratch, in points; " +
        "similarity = top-layer probe accuracy over the best layer's on the held-out fifth",
      [
        "target",
        "per class",
        "smallest class",
        "steps",
        ...strategies,
        "best",
        "best transfer",
        "gain",
        "similarity",
        "advisor",
        "advisor matched",
        "best single stage",
        "scratch rate",
      ],
      rows,
    );
    r.figure("baseAccuracy", base.accuracy)
      .figure("baseCached", base.cached)
      .figure("advisorMatches", matches)
      .figure("cells", cells);
    r.tensor(
      "accuracy",
      tf.tensor3d(
        acc.map((a) => a.map((b) => b.map(mean))),
        [targets.length, p.perClass.length, strategies.length],
      ),
    );
    r.note(
      "This experiment trains its own base on Fashion-MNIST classes 0-4 and reads " +
        "Fashion-MNIST and MNIST itself: the run's model (--model) is not used.",
    );
    return r;
  },
};
