/**
 * `augment-effect` (train): does augmentation help on small data? The same
 * small ConvNet (conv 16, pool, conv 32, pool, dense 64, logits) is trained
 * on 1,000 Fashion-MNIST training images (100 per class, the first of each)
 * with and without augmentation, under several seeds (initializers, order,
 * augmentation), and measured on the 10,000 test images: mean and standard
 * deviation of the test accuracy.
 * "Change the pixels without changing the label" should pay most where data is
 * scarce. The default (`light`) pipeline is a mirror, a whole-pixel shift of
 * up to 10% (3 pixels) and random erasing (half the images, 2-20% of the area
 * set to 0); the `standard` one adds rotation, zoom, shear, lens distortion,
 * brightness and contrast, which on this small net and 1,000 images cost more
 * than they gave (runs in bench/RESULTS.md). The
 * run does not use the run's model: it trains its own, the same for both arms,
 * on Fashion-MNIST whatever `--model` is.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { ParamValues } from "../../../core/params.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { perClassIndices, subset } from "../../../core/data/source.ts";
import { fashionMnist } from "../../../core/data/fashion_mnist.ts";
import { fit } from "../../../core/train/fit.ts";
import { evaluate } from "../../../core/train/metrics.ts";
import { standardPipeline } from "./standard.ts";
import { augmentPipeline } from "./pipeline.ts";
import { horizontalFlip } from "./flip.ts";
import { randomAffine } from "./affine.ts";
import { randomErasing } from "./erasing.ts";

/** The parameters of the `augment-effect` plugin: its schema, declared once. */
export const AUGMENT_EFFECT_PARAMS = {
  images: {
    type: "integer",
    default: 1000,
    min: 10,
    max: 60000,
    help: "Fashion-MNIST training images (the first images/10 of each class)",
  },
  epochs: {
    type: "integer",
    default: 200,
    min: 1,
    max: 1000,
    help: "passes over the training images",
  },
  seeds: {
    type: "integer",
    default: 3,
    min: 1,
    max: 20,
    help: "runs per arm (seeds seed .. seed + seeds - 1)",
  },
  testImages: {
    type: "integer",
    default: 10000,
    min: 1,
    max: 10000,
    help: "test images measured (the first ones)",
  },
  batchSize: { type: "integer", default: 50, min: 1, max: 1000, help: "images per step" },
  pipeline: {
    type: "enum",
    choices: ["light", "standard"] as const,
    default: "light",
    help:
      "light: flip, whole-pixel shifts up to 10%, random erasing; standard: the augment plugin's",
  },
  learningRate: { type: "number", default: 0.002, min: 1e-6, max: 1, help: "Adam's learning rate" },
} as const;

/** The `augment-effect` plugin's parameter values, typed from {@linkcode AUGMENT_EFFECT_PARAMS}. */
export type AugmentEffectOptions = ParamValues<typeof AUGMENT_EFFECT_PARAMS>;

/**
 * The small ConvNet both arms train, initializers seeded.
 *
 * @param seed Seed of the initializers.
 * @param shape `[height, width, channels]`.
 * @param classes Number of classes.
 * @returns The model (probabilities out; its `logits` layer is named).
 */
export function smallConvNet(
  seed: number,
  shape: [number, number, number],
  classes: number,
): tf.Sequential {
  let s = seed * 100 + 7;
  const he = () => tf.initializers.heNormal({ seed: ++s });
  return tf.sequential({
    name: "small_convnet",
    layers: [
      tf.layers.conv2d({
        inputShape: shape,
        filters: 16,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: he(),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: he(),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: "relu", kernelInitializer: he() }),
      tf.layers.dense({
        name: "logits",
        units: classes,
        kernelInitializer: tf.initializers.glorotUniform({ seed: ++s }),
      }),
      tf.layers.activation({ activation: "softmax" }),
    ],
  });
}

function meanStd(v: number[]): [number, number] {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
  return [m, sd];
}

/** The `augment-effect` plugin. */
export const augmentEffect: Plugin<typeof AUGMENT_EFFECT_PARAMS> = definePlugin({
  name: "augment-effect",
  family: "train",
  summary: "A small net on 1,000 Fashion-MNIST images with and without augmentation: test accuracy",
  params: AUGMENT_EFFECT_PARAMS,
  resultShape: () => ({}),
  demo: [{ epochs: 6, seeds: 1, testImages: 1000 }],
  async run(ctx, p) {
    if (p.images < 10 || p.images % 10 !== 0) {
      throw new RangeError(
        `augment-effect: images ${p.images} is invalid: give a multiple of 10 (the same count per class)`,
      );
    }
    const [train, test] = await Promise.all([fashionMnist("train"), fashionMnist("test")]);
    const small = subset(
      train,
      perClassIndices(train, p.images / 10),
      `fashion-mnist train, ${p.images} images`,
    );
    const held = subset(
      test,
      Array.from({ length: p.testImages }, (_, i) => i),
      `fashion-mnist test, first ${p.testImages}`,
    );
    const pipeline = p.pipeline === "light"
      ? augmentPipeline([
        horizontalFlip(),
        randomAffine({ translate: 0.1, wholePixels: true }),
        randomErasing({ p: 0.5, area: [0.02, 0.2], fill: 0 }),
      ])
      : standardPipeline({ channels: small.shape[2] });
    const arms = [{ key: "without", augment: undefined }, {
      key: "with",
      augment: pipeline.asAugment(),
    }] as const;
    const acc: Record<string, number[]> = { without: [], with: [] };
    const loss: Record<string, number[][]> = { without: [], with: [] };
    let done = 0;
    for (let s = 0; s < p.seeds; s++) {
      const seed = ctx.seed + s;
      for (const arm of arms) {
        const model = smallConvNet(seed, [...small.shape], small.classes.length);
        try {
          const { history } = await fit(model, small, {
            epochs: p.epochs,
            batchSize: p.batchSize,
            seed,
            optimizer: { name: "adam" },
            schedule: { kind: "cosine", learningRate: p.learningRate, finalFraction: 0.05 },
            logits: "logits",
            ...(arm.augment ? { augment: arm.augment } : {}),
          });
          const m = await evaluate(model, held, { batchSize: 500 });
          acc[arm.key].push(m.accuracy);
          loss[arm.key].push(history.map((h) => h.loss));
        } finally {
          model.dispose();
        }
        ctx.progress(++done, 2 * p.seeds);
      }
    }
    const [mw, sw] = meanStd(acc.without), [ma, sa] = meanStd(acc.with);
    const r = new Result(
      "augment-effect",
      "Augmentation on small data: the same net with and without",
    );
    r.figure("accuracyWithout", mw).figure("accuracyWith", ma)
      .figure("stdWithout", sw).figure("stdWith", sa)
      .figure("gainPoints", Number((100 * (ma - mw)).toFixed(3)))
      .figure("trainImages", p.images).figure("testImages", p.testImages)
      .figure("epochs", p.epochs).figure("seeds", p.seeds);
    r.table(
      `Test accuracy on ${p.testImages} Fashion-MNIST test images of the small ConvNet trained ${p.epochs} ` +
        `epochs on ${p.images} training images, per seed`,
      ["seed", "without augmentation", "with augmentation", "gain (points)"],
      [
        ...acc.without.map((
          a,
          s,
        ) => [ctx.seed + s, a, acc.with[s], Number((100 * (acc.with[s] - a)).toFixed(2))]),
        ["mean", mw, ma, Number((100 * (ma - mw)).toFixed(2))],
        ["std", sw, sa, ""],
      ],
    );
    const seeds = acc.without.map((_, s) => `seed ${ctx.seed + s}`);
    r.addPlot(
      "accuracy",
      linePlot([
        {
          name: "without augmentation",
          x: [...seeds, "mean"],
          y: [...acc.without, mw].map((v) => 100 * v),
          mark: "bar",
        },
        {
          name: "with augmentation",
          x: [...seeds, "mean"],
          y: [...acc.with, ma].map((v) => 100 * v),
          mark: "bar",
        },
      ], {
        title: `Test accuracy, ${p.images} training images`,
        xLabel: "run",
        yLabel: "test accuracy (%)",
        yDomain: [Math.max(0, Math.floor(100 * Math.min(...acc.without, ...acc.with)) - 5), 100],
      }),
      "Test accuracy per seed and its mean, without and with the standard augmentation pipeline",
    );
    const epochs = Array.from({ length: p.epochs }, (_, i) => i + 1);
    r.addPlot(
      "loss",
      linePlot([
        ...loss.without.map((l, s) => ({
          name: s === 0 ? "without" : `without, seed ${ctx.seed + s}`,
          x: epochs,
          y: l,
          color: "#4e79a7",
        })),
        ...loss.with.map((l, s) => ({
          name: s === 0 ? "with" : `with, seed ${ctx.seed + s}`,
          x: epochs,
          y: l,
          color: "#f28e2b",
          dashed: true,
        })),
      ], {
        title: "Training loss per epoch",
        xLabel: "epoch",
        yLabel: "training loss (cross-entropy)",
        legend: true,
      }),
      "Training loss per epoch (on the augmented images for the dashed runs): without augmentation the " +
        "net drives the loss of its 1,000 images towards 0 and overfits",
    );
    r.note(
      `Pipeline: ${pipeline.transforms.map((t) => t.name).join(", ")}. Adam, cosine decay from ` +
        `${p.learningRate}, batch ${p.batchSize}; the run's model is not used.`,
    );
    return r;
  },
});
