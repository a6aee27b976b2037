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
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { linePlot, type PlotSeries } from "../../core/plots/plot.ts";
import { type DataSource, subset } from "../../core/data/source.ts";
import { fashionMnist } from "../../core/data/fashion_mnist.ts";
import { fit } from "../../core/train/fit.ts";
import { evaluate } from "../../core/train/metrics.ts";
import { modelCosts } from "./costs.ts";
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
    const train = await fashionMnist("train");
    const test = await fashionMnist("test");
    const trainSet = subset(train, Array.from({ length: p.trainCount }, (_, i) => i));
    const testSet = subset(test, Array.from({ length: p.testCount }, (_, i) => i));
    const shape = train.shape;
    const classes = train.classes.length;
    const rows: (string | number)[][] = [];
    const series: PlotSeries[] = [];
    const r = new Result(
      "stack-experiment",
      "The power of small filters, trained on Fashion-MNIST",
    );
    const total = STACK_VARIANTS.length * p.seeds;
    let done = 0;
    for (const variant of STACK_VARIANTS) {
      const accuracies: number[] = [], times: number[] = [];
      let params = 0, macs = 0;
      const one = measureBlock(variant, block(variant, { filters: p.channels }), [
        Math.floor(shape[0] / 2),
        Math.floor(shape[1] / 2),
        p.channels,
      ]);
      for (let s = 0; s < p.seeds; s++) {
        const seed = ctx.seed + s + 1;
        const model = stackNet(variant, { shape, classes, channels: p.channels, seed });
        try {
          if (s === 0) {
            const costs = modelCosts(Net.fromModel(model));
            params = costs.params;
            macs = costs.multiplyAdds;
          }
          await fit(model, trainSet, {
            epochs: p.epochs,
            batchSize: p.batchSize,
            seed,
            optimizer: { name: "adam" },
            schedule: { kind: "constant", learningRate: p.learningRate },
          });
          accuracies.push((await evaluate(model, testSet)).accuracy);
          times.push(await msPerImage(model, testSet));
        } finally {
          model.dispose();
        }
        ctx.progress(++done, total);
      }
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
    return r;
  },
});
