/**
 * `stack-experiment` (design): the lecture's claim "fewer parameters, less
 * compute, more nonlinearity" put to a test. One net, four versions of its conv
 * blocks, each block seeing 7x7: one 7x7 conv, three stacked 3x3 convs, a 1x1
 * bottleneck around three 3x3 convs at half width, and the 1x7 + 7x1
 * factorization. Each is trained with `fit` on Fashion-MNIST for the same
 * epochs under several seeds; the table gives test accuracy (mean and standard
 * deviation), parameters, multiply-adds (read off the built model) and the
 * measured milliseconds per image, and a plot puts accuracy against cost.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../core/plugin.ts";
import { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { linePlot, type PlotSeries } from "../../core/plots/plot.ts";
import { type DataSource, subset } from "../../core/data/source.ts";
import { fashionMnist } from "../../core/data/fashion_mnist.ts";
import { fit } from "../../core/train/fit.ts";
import { evaluate } from "../../core/train/metrics.ts";
import { modelCosts } from "./costs.ts";
import type { Mergeable } from "../../core/jobs/mergeable.ts";
import { shardRange, type ShardSpec, WHOLE } from "../../core/jobs/shard_spec.ts";
import type { ScanResult, ShardedJob } from "../../core/jobs/sharded_job.ts";
import { measureBlock } from "./stack_compare.ts";
import {
  applyLayers,
  bottleneck,
  type ConvStackOptions,
  factorized,
  largeConv,
  stacked3x3,
} from "./conv_stacks.ts";

/** The four block designs, each with a 7x7 receptive field. */
export const STACK_VARIANTS = ["7x7", "3x3-stack", "bottleneck", "factorized"] as const;

/** One of {@linkcode STACK_VARIANTS}. */
export type StackVariant = typeof STACK_VARIANTS[number];

/** The parameters of the `stack-experiment` plugin. */
export const STACK_EXPERIMENT_PARAMS = {
  channels: { type: "integer", default: 32, min: 2, max: 512, help: "channels C of the blocks" },
  trainCount: {
    type: "integer",
    default: 10_000,
    min: 10,
    max: 60_000,
    help: "Fashion-MNIST training images",
  },
  testCount: {
    type: "integer",
    default: 10_000,
    min: 10,
    max: 10_000,
    help: "Fashion-MNIST test images",
  },
  epochs: {
    type: "integer",
    default: 3,
    min: 1,
    max: 100,
    help: "epochs (the same for every net)",
  },
  seeds: { type: "integer", default: 3, min: 1, max: 10, help: "seeds per variant" },
  batchSize: { type: "integer", default: 64, min: 1, max: 1024, help: "examples per step" },
  learningRate: { type: "number", default: 0.002, min: 0, max: 1, help: "Adam's learning rate" },
} as const;

/** The `stack-experiment` plugin's parameter values, typed from {@linkcode STACK_EXPERIMENT_PARAMS}. */
export type StackExperimentOptions = ParamValues<typeof STACK_EXPERIMENT_PARAMS>;

function block(variant: StackVariant, o: ConvStackOptions): tf.layers.Layer[] {
  switch (variant) {
    case "7x7":
      return largeConv(7, o);
    case "3x3-stack":
      return stacked3x3(3, o);
    case "bottleneck":
      return bottleneck({ ...o, convs: 3 });
    case "factorized":
      return factorized(7, o);
  }
}

/**
 * The experiment's net with one block design: a 3x3 stem to C channels and a
 * 2x2 max pool, then twice a block and a 2x2 max pool, global average pooling
 * and a softmax over the classes.
 *
 * @param variant The block design.
 * @param options Input shape, classes, channels, seed.
 * @returns The model (blocks named `block1_*`, `block2_*`).
 */
export function stackNet(
  variant: StackVariant,
  options: {
    shape: readonly [number, number, number];
    classes: number;
    channels: number;
    seed: number;
  },
): tf.LayersModel {
  const { shape, classes, channels, seed } = options;
  const input = tf.input({ shape: [...shape] });
  let x = tf.layers.conv2d({
    name: "stem",
    filters: channels,
    kernelSize: 3,
    padding: "same",
    activation: "relu",
    kernelInitializer: tf.initializers.heNormal({ seed: seed * 1000 }),
  }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: "pool0", poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  for (const b of [1, 2]) {
    x = applyLayers(
      block(variant, { filters: channels, name: `block${b}`, seed: seed * 10 + b }),
      x,
    );
    x = tf.layers.maxPooling2d({ name: `pool${b}`, poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({
    name: "probs",
    units: classes,
    activation: "softmax",
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + 1 }),
  }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: `stack_${variant.replace(/\W/g, "_")}` });
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) =>
  v.length < 2 ? 0 : Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1));

async function msPerImage(model: tf.LayersModel, test: DataSource): Promise<number> {
  const n = Math.min(64, test.size);
  const { x, y } = await test.batch(Array.from({ length: n }, (_, i) => i));
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t0 = performance.now();
    const p = model.predict(x) as tf.Tensor;
    await p.data();
    p.dispose();
    if (r > 0) times.push(performance.now() - t0);
  }
  tf.dispose([x, y]);
  return times.sort((a, b) => a - b)[1] / n;
}

/** What one cell of the experiment (one block design, one seed) measured. */
export interface StackCell {
  /** The cell's index: variant `floor(cell / seeds)`, seed `cell % seeds`. */
  cell: number;
  /** Test accuracy. */
  accuracy: number;
  /** Measured milliseconds per image at batch 64 (a timing: not reproducible). */
  ms: number;
  /** Parameters of the whole net. */
  params: number;
  /** Multiply-adds of the whole net per image. */
  macs: number;
}

/**
 * The mergeable state of `stack-experiment`: the cells a shard trained, by
 * index. Cells are disjoint across shards, so the merge is their union.
 */
export interface StackExperimentState {
  /** The cells, by index. */
  cells: StackCell[];
}

/** The state type of `stack-experiment`: cells united by index. */
export const STACK_EXPERIMENT_STATE: Mergeable<StackExperimentState> = {
  merge(a, b) {
    const cells = [...a.cells, ...b.cells].sort((x, y) => x.cell - y.cell);
    if (cells.some((c, i) => i > 0 && c.cell === cells[i - 1].cell)) {
      throw new RangeError("stack-experiment: cannot merge states that hold the same cell twice");
    }
    return { cells };
  },
  encode: (s) => ({ json: s, arrays: {} }),
  decode({ json }) {
    const j = json as StackExperimentState;
    if (!j || !Array.isArray(j.cells)) {
      throw new RangeError("stack-experiment: the state file holds no trained cells");
    }
    return j;
  },
};

/** The cells `[lo, hi)` of shard `shard`: each trains one block design under one seed. */
async function scan(
  ctx: Context,
  p: StackExperimentOptions,
  shard: ShardSpec,
): Promise<ScanResult<StackExperimentState>> {
  const train = await fashionMnist("train");
  const test = await fashionMnist("test");
  const trainSet = subset(train, Array.from({ length: p.trainCount }, (_, i) => i));
  const testSet = subset(test, Array.from({ length: p.testCount }, (_, i) => i));
  const shape = train.shape;
  const classes = train.classes.length;
  const total = STACK_VARIANTS.length * p.seeds;
  const [lo, hi] = shardRange(total, shard);
  const cells: StackCell[] = [];
  for (let cell = lo; cell < hi; cell++) {
    const variant = STACK_VARIANTS[Math.floor(cell / p.seeds)];
    // The seed comes from the cell's global index: the same in any shard.
    const seed = ctx.seed + (cell % p.seeds) + 1;
    const model = stackNet(variant, { shape, classes, channels: p.channels, seed });
    try {
      const costs = modelCosts(Net.fromModel(model));
      await fit(model, trainSet, {
        epochs: p.epochs,
        batchSize: p.batchSize,
        seed,
        optimizer: { name: "adam" },
        schedule: { kind: "constant", learningRate: p.learningRate },
      });
      cells.push({
        cell,
        accuracy: (await evaluate(model, testSet)).accuracy,
        ms: await msPerImage(model, testSet),
        params: costs.params,
        macs: costs.multiplyAdds,
      });
    } finally {
      model.dispose();
    }
    ctx.progress(cell - lo + 1, hi - lo);
  }
  return { value: { cells }, data: cellsData(p) };
}

function cellsData(p: StackExperimentOptions): { name: string; size: number } {
  return {
    name: `stack-experiment cells: ${STACK_VARIANTS.length} block designs x ${p.seeds} seeds`,
    size: STACK_VARIANTS.length * p.seeds,
  };
}

/** The table, figures and plot of all cells. */
function finish(
  _ctx: Context,
  p: StackExperimentOptions,
  s: StackExperimentState,
): Promise<Result> {
  const rows: (string | number)[][] = [];
  const series: PlotSeries[] = [];
  const r = new Result(
    "stack-experiment",
    "The power of small filters, trained on Fashion-MNIST",
  );
  for (const [v, variant] of STACK_VARIANTS.entries()) {
    const cells = s.cells.filter((c) => Math.floor(c.cell / p.seeds) === v);
    const accuracies = cells.map((c) => c.accuracy), times = cells.map((c) => c.ms);
    const { params, macs } = cells[0];
    // A block sees the stem's pooled map: half of Fashion-MNIST's 28x28.
    const one = measureBlock(variant, block(variant, { filters: p.channels }), [
      14,
      14,
      p.channels,
    ]);
    const acc = mean(accuracies);
    r.figure(`accuracy.${variant}`, Number(acc.toFixed(4)))
      .figure(`accuracyStd.${variant}`, Number(std(accuracies).toFixed(4)))
      .figure(`params.${variant}`, params)
      .figure(`macs.${variant}`, macs);
    // Times stay in the table: figures are the deterministic part of a result.
    rows.push([
      variant,
      Number((100 * acc).toFixed(2)),
      Number((100 * std(accuracies)).toFixed(2)),
      accuracies.map((a) => (100 * a).toFixed(2)).join(", "),
      params,
      macs,
      `${one.receptiveField}x${one.receptiveField}`,
      one.nonlinearities,
      Number(mean(times).toFixed(4)),
    ]);
    series.push({ name: variant, x: [macs / 1e6], y: [100 * acc], mark: "scatter" });
  }
  r.figure("trainCount", p.trainCount).figure("testCount", p.testCount).figure(
    "epochs",
    p.epochs,
  );
  r.table(
    `Each net trained ${p.epochs} epochs on ${p.trainCount} Fashion-MNIST images (Adam, ` +
      `lr ${p.learningRate}, batch ${p.batchSize}), tested on ${p.testCount}; ${p.seeds} seeds. ` +
      "Parameters and multiply-adds of the whole net per image; receptive field and " +
      "nonlinearities of one block; ms per image at batch 64 on this backend",
    [
      "blocks",
      "test accuracy %",
      "std",
      "per seed",
      "params",
      "multiply-adds",
      "block RF",
      "block nonlinearities",
      "ms / image",
    ],
    rows,
  );
  r.addPlot(
    "accuracy_vs_cost",
    linePlot(series, {
      xLabel: "multiply-adds per image (millions)",
      yLabel: "test accuracy (%)",
      title: "Accuracy against cost",
      legend: true,
    }),
    "Mean test accuracy of each block design against the net's multiply-adds",
  );
  return Promise.resolve(r);
}

/**
 * `stack-experiment` as a sharded job: the cells (block design x seed, in
 * that order) are cut by index; shard i trains its cells and writes their
 * accuracies; the merge assembles the table. Seeds come from the cell's
 * index, so merged shards give the single run's accuracies.
 */
export const stackExperimentJob: ShardedJob<
  typeof STACK_EXPERIMENT_PARAMS,
  StackExperimentState
> = {
  get plugin() {
    return stackExperiment;
  },
  state: STACK_EXPERIMENT_STATE,
  dataOf: (_ctx, p) => Promise.resolve(cellsData(p)),
  scan,
  finish,
};

/** The `stack-experiment` plugin. */
export const stackExperiment: Plugin<typeof STACK_EXPERIMENT_PARAMS> = definePlugin({
  name: "stack-experiment",
  family: "design",
  summary:
    "Trains 7x7, 3x3-stack, bottleneck and 1x7+7x1 nets on Fashion-MNIST: accuracy against cost",
  params: STACK_EXPERIMENT_PARAMS,
  needsImages: false,
  resultShape: () => ({}),
  // The defaults take minutes; the demo report shows a quick version.
  demo: [{ trainCount: 1500, testCount: 1000, epochs: 2, seeds: 1 }],
  async run(ctx, p) {
    const { value } = await scan(ctx, p, WHOLE);
    return await finish(ctx, p, value);
  },
});
