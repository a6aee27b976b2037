/**
 * `shallow-fooling` (fool): adversarial examples are not a ConvNet oddity. After
 * Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples"
 * (ICLR 2015): a softmax linear classifier (multinomial logistic regression), trained
 * here in a few seconds on the ConvNet's own training images (a built-in model's
 * training split, else the run's data set), is fooled by the fast gradient
 * sign method just as the ConvNet is: for `w . x`, the step `eps * sign(w)` moves
 * the score by `eps * |w|_1`, which grows with the dimension, so many tiny changes
 * add up. The result is a table and a plot of the attack's success against
 * epsilon for both nets, the linear model's weight templates, and examples.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { grid } from "../../core/images/grids.ts";
import { linePlot } from "../../core/plots/plot.ts";
import { type EpochLog, fit } from "../../core/train/fit.ts";
import { learningCurves } from "../../core/plots/learning_curves.ts";
import { evaluate } from "../../core/train/metrics.ts";
import { type DataSource, subset } from "../../core/data/source.ts";
import { mnistSource } from "../../core/builtin/mnist.ts";
import { BUILTIN_NAMES, builtinModel } from "../../core/builtin/mod.ts";
import { attack, fgsmDirection } from "./adversarial.ts";
import { argmax, pct, pixelProbabilities, rows } from "./_common.ts";

/** Options of {@linkcode trainLinearClassifier}. */
export interface LinearClassifierOptions {
  /** Passes over the training images. @default 4 */
  epochs?: number;
  /** MNIST training digits used when no `data` is given (of the 8,000). @default 8000 */
  count?: number;
  /** Digits per Adam step. @default 100 */
  batchSize?: number;
  /** Adam learning rate. @default 0.01 */
  learningRate?: number;
  /** Seed of the shuffling (the weights start at zero). @default 0 */
  seed?: number;
  /** Class labels of the wrapped Net. @default the data's classes */
  labels?: string[];
  /** Training images. @default the built-in MNIST training digits (`count` of them) */
  data?: DataSource;
}

/** A trained linear classifier. */
export interface LinearClassifier {
  /** The model as a Net on 28x28x1 pixels in [0, 1] (free it with `net.dispose()`). */
  net: Net;
  /** Accuracy on the training images used. */
  trainAccuracy: number;
  /** What `fit` logged per epoch (loss and accuracy on the training images). */
  history: EpochLog[];
}

/**
 * Trains a softmax linear classifier `softmax(W x + b)` with `fit` (Adam, from
 * zero weights) on `data`, by default the training digits of the built-in split,
 * deterministically under a seed.
 *
 * @param options Data, epochs, batch size, learning rate, seed.
 * @returns The classifier as a Net (Flatten then Dense with softmax) and its
 *   training accuracy.
 */
export async function trainLinearClassifier(
  options: LinearClassifierOptions = {},
): Promise<LinearClassifier> {
  const epochs = options.epochs ?? 4;
  const batchSize = options.batchSize ?? 100;
  const lr = options.learningRate ?? 0.01;
  for (const [k, v] of [["epochs", epochs], ["batchSize", batchSize]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
  }
  let data: DataSource;
  if (options.data) data = options.data;
  else {
    const digits = await mnistSource("train");
    const n = Math.min(options.count ?? 8000, digits.size);
    data = subset(digits, Array.from({ length: n }, (_, i) => i));
  }
  const classes = options.labels ?? [...data.classes];
  const [h, w, c] = data.shape;
  const model = tf.sequential({
    name: "linear",
    layers: [
      tf.layers.flatten({ name: "flatten", inputShape: [h, w, c] }),
      tf.layers.dense({ name: "dense", units: classes.length, kernelInitializer: "zeros" }),
      tf.layers.activation({ name: "probs", activation: "softmax" }),
    ],
  });
  try {
    const { history } = await fit(model, data, {
      epochs,
      batchSize,
      seed: options.seed ?? 0,
      optimizer: { name: "adam" },
      schedule: { learningRate: lr },
      logits: "dense",
    });
    const { accuracy: trainAccuracy } = await evaluate(model, data);
    const net = Net.fromModel(model, {
      name: "linear softmax classifier",
      input: { height: h, width: w, channels: c, range: [0, 1], mean: [0], std: [1] },
      labels: classes,
    }, "memory (trained by shallow-fooling)");
    return { net, trainAccuracy, history };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Options of the `shallow-fooling` plugin. */
export type ShallowFoolingOptions = {
  /** Epsilons (pixel units) to attack at. */
  epsilons: { type: "numbers"; default: [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]; help: string };
  /** Held-out digits attacked. */
  count: { type: "integer"; default: 500; min: 1; max: 2000; help: string };
  /** `fgsm` (Goodfellow's) or `pgd`. */
  method: { type: "enum"; choices: readonly ["fgsm", "pgd"]; default: "fgsm"; help: string };
  /** PGD steps. */
  steps: { type: "integer"; default: 10; min: 1; help: string };
  /** Epochs of the linear classifier. */
  epochs: { type: "integer"; default: 4; min: 1; max: 50; help: string };
  /** Examples shown. */
  show: { type: "integer"; default: 5; min: 1; max: 20; help: string };
};

/** The `shallow-fooling` plugin. */
export const shallowFooling: Plugin<ShallowFoolingOptions> = definePlugin({
  name: "shallow-fooling",
  family: "fool",
  summary: "A softmax linear classifier is fooled too: success against epsilon for both nets",
  params: {
    epsilons: {
      type: "numbers",
      default: [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
      help: "epsilons to attack at, pixel units",
    },
    count: { type: "integer", default: 500, min: 1, max: 2000, help: "held-out digits attacked" },
    method: {
      type: "enum",
      choices: ["fgsm", "pgd"] as const,
      default: "fgsm",
      help: "fgsm (Goodfellow's fast gradient sign) or pgd",
    },
    steps: { type: "integer", default: 10, min: 1, help: "pgd steps" },
    epochs: {
      type: "integer",
      default: 4,
      min: 1,
      max: 50,
      help: "epochs of the linear classifier",
    },
    show: { type: "integer", default: 5, min: 1, max: 20, help: "examples shown" },
  },
  resultShape(net, p) {
    const { height, width, channels } = net.input;
    return {
      success: [2, p.epsilons.length],
      linearWeights: [net.numClasses, height, width, channels],
    };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net } = ctx;
    const { height, width, channels } = net.input;
    if (p.epsilons.length === 0) throw new RangeError("Give at least one epsilon, e.g. 0,0.1,0.25");
    for (const e of p.epsilons) {
      if (!(e >= 0 && e <= 1)) {
        throw new RangeError(
          `Epsilon ${e} is outside [0, 1]: epsilons are in pixel units, where images span [0, 1]`,
        );
      }
    }
    // The linear classifier learns from what the ConvNet learned from: a
    // built-in model's training split, else the run's data set.
    const own = BUILTIN_NAMES.find((b) => b === net.sidecar.name);
    const test = await ctx.data();
    const all = own ? (await builtinModel(own).data(1, 1)).train : test;
    // 8,000 images train a linear classifier to its plateau in seconds.
    const train = all.size > 8000
      ? subset(all, Array.from({ length: 8000 }, (_, i) => i), `${all.name}, first 8000`)
      : all;
    if (train.classes.length !== net.numClasses) {
      throw new RangeError(
        `shallow-fooling: ${train.name} has ${train.classes.length} classes but the model ` +
          `scores ${net.numClasses}; give --data with the model's classes`,
      );
    }
    const eps = [...p.epsilons].sort((a, b) => a - b);
    const linear = await trainLinearClassifier({
      epochs: p.epochs,
      seed: ctx.seed,
      labels: net.labels,
      data: train,
    });
    const held = await test.batch(
      Array.from({ length: Math.min(p.count, test.size) }, (_, i) => i),
    );
    const d = { images: held.x, labels: Array.from(await held.y.data() as Int32Array) };
    held.y.dispose();
    const result = new Result("shallow-fooling", "Shallow nets are fooled too (Goodfellow et al.)");
    const showEps = eps.includes(0.25) ? 0.25 : eps[eps.length - 1];
    const shown: Record<string, tf.Tensor4D> = {};
    try {
      const nets = [{ key: "convnet", net }, { key: "linear", net: linear.net }];
      const success: number[][] = [[], []];
      const errors: number[][] = [[], []];
      const accuracy: number[] = [];
      let done = 0;
      for (const [k, { key, net: m }] of nets.entries()) {
        const p0 = pixelProbabilities(m, d.images);
        const pred = (await rows(p0)).map(argmax);
        p0.dispose();
        const correct = pred.map((q, i) => q === d.labels[i]);
        accuracy.push(correct.filter(Boolean).length / pred.length);
        // FGSM takes one gradient for the whole sweep.
        const dir = p.method === "fgsm" ? fgsmDirection(m, d.images, d.labels) : undefined;
        for (const e of eps) {
          const adv = dir
            ? tf.tidy(() => d.images.add(dir.mul(e)).clipByValue(0, 1) as tf.Tensor4D)
            : await attack(m, d.images, d.labels, {
              method: p.method,
              epsilon: e,
              steps: p.steps,
              rng: ctx.rng.fork(),
            });
          const pa = pixelProbabilities(m, adv);
          const after = (await rows(pa)).map(argmax);
          pa.dispose();
          const attacked = correct.filter(Boolean).length;
          const fooled = after.filter((q, i) => correct[i] && q !== d.labels[i]).length;
          success[k].push(attacked ? fooled / attacked : 0);
          errors[k].push(after.filter((q, i) => q !== d.labels[i]).length / after.length);
          if (e === showEps) {
            shown[key] = tf.tidy(() =>
              adv.slice([0, 0, 0, 0], [Math.min(p.show, p.count), -1, -1, -1])
            );
          }
          adv.dispose();
          ctx.progress(++done, 2 * eps.length);
        }
        dir?.dispose();
      }
      result.figure("method", p.method).figure("digits", d.labels.length)
        .figure("convnet.accuracy", accuracy[0]).figure("linear.accuracy", accuracy[1])
        .figure("linear.trainAccuracy", linear.trainAccuracy);
      eps.forEach((e, i) => {
        result.figure(`convnet.successAt${e}`, success[0][i]);
        result.figure(`linear.successAt${e}`, success[1][i]);
      });
      result.table(
        `${p.method.toUpperCase()} on ${d.labels.length} held-out digits: success on the correctly ` +
          "classified ones, and error rate on all",
        ["epsilon", "convnet success", "linear success", "convnet error", "linear error"],
        eps.map((e, i) => [e, success[0][i], success[1][i], errors[0][i], errors[1][i]]),
      );
      result.addPlot(
        "success",
        linePlot([
          { name: "ConvNet", x: eps, y: success[0].map((v) => 100 * v) },
          { name: "linear classifier", x: eps, y: success[1].map((v) => 100 * v) },
        ], {
          title: `${p.method.toUpperCase()} success against epsilon`,
          xLabel: "epsilon (pixel units, inputs in [0, 1])",
          yLabel: "attack success (%)",
          yDomain: [0, 100],
        }),
        `Attack success against epsilon, for the ConvNet and for the linear classifier ` +
          `(${p.method.toUpperCase()}, correctly classified held-out images)`,
      );
      const curves = learningCurves(linear.history, "linear classifier");
      result.addPlot(
        "linear-loss",
        curves.loss,
        "Training loss of the linear classifier per epoch (Adam, on the ConvNet's training images)",
      );
      if (curves.accuracy) {
        result.addPlot(
          "linear-accuracy",
          curves.accuracy,
          "Training accuracy of the linear classifier per epoch",
        );
      }
      const weights = tf.tidy(() => {
        const w = linear.net.kernel("dense"); // [h * w * c, classes]
        return w.transpose().reshape([net.numClasses, height, width, channels]);
      });
      // A diverging map centred on zero, so that white is a weight of 0.
      const wMaxT = tf.tidy(() => weights.mean(3).abs().max());
      const wMax = Math.max((await wMaxT.data())[0], 1e-12);
      wMaxT.dispose();
      const wCols = Math.min(5, net.numClasses);
      const wPicture = tf.tidy(() =>
        grid(
          colormap(weights.mean(3) as tf.Tensor3D, "coolwarm", { min: -wMax, max: wMax }),
          { scale: 3, cols: wCols },
        )
      );
      await result.addImage(
        "weights",
        wPicture,
        "The linear classifier's weight template per class (blue < 0 < red): the pixels " +
          "whose brightness raises (red) or lowers (blue) the class's score",
        {
          tiles: net.labels.slice(0, net.numClasses),
          cols: wCols,
          colorbar: {
            colormap: "coolwarm",
            min: -wMax,
            max: wMax,
            label: "weight (mean over channels)",
          },
        },
      );
      wPicture.dispose();
      result.tensor("linearWeights", weights);
      const s = shown.convnet.shape[0];
      const examples = tf.tidy(() => d.images.slice([0, 0, 0, 0], [s, -1, -1, -1]));
      const [pConv, pLin] = [
        pixelProbabilities(net, shown.convnet),
        pixelProbabilities(linear.net, shown.linear),
      ];
      const rc = await rows(pConv), rl = await rows(pLin);
      tf.dispose([pConv, pLin]);
      const labels: string[] = [];
      for (let i = 0; i < examples.shape[0]; i++) {
        const c = argmax(rc[i]), l = argmax(rl[i]);
        labels.push(
          `digit ${d.labels[i]}`,
          `conv ${net.labels[c]} ${pct(rc[i][c])}`,
          `lin ${net.labels[l]} ${pct(rl[i][l])}`,
        );
      }
      const exPicture = tf.tidy(() =>
        grid(
          tf.stack([examples, shown.convnet, shown.linear], 1).reshape([
            -1,
            height,
            width,
            channels,
          ]) as tf.Tensor4D,
          { cols: 3, scale: Math.max(1, Math.floor(112 / Math.max(height, width))) },
        )
      );
      examples.dispose();
      await result.addImage(
        "examples",
        exPicture,
        `Per image: x, the ConvNet's x + r and the linear classifier's x + r, each ` +
          `${p.method.toUpperCase()} at eps ${showEps}, with the class each net gives and ` +
          "its confidence",
        { tiles: labels, cols: 3 },
      );
      exPicture.dispose();
      result.tensor("success", tf.tensor2d(success));
      return result;
    } catch (err) {
      result.dispose();
      throw err;
    } finally {
      tf.dispose(Object.values(shown));
      d.images.dispose();
      linear.net.dispose();
    }
  },
});
