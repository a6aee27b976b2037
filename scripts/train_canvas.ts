/**
 * Trains the built-in canvas ConvNet: 64x64 canvases, each holding one MNIST digit at
 * a random position and scale among faint fragments of other digits (see `canvasSet`
 * in `core/datasets.ts`). It learns the digit's class; the digit's box is known for
 * every canvas (`heldOutCanvases()` returns it), so attribution maps and localization
 * heads can be checked against it. Saves to `models/canvas/`.
 *
 * ```sh
 * deno run -A scripts/train_canvas.ts --epochs 4 --per-epoch 20000 --out models/canvas
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { writeFileAtomic } from "../core/files.ts";
import { initBackend } from "../backends/mod.ts";
import {
  CANVAS_SEED,
  CANVAS_SIZE,
  canvasArrays,
  heldOutCanvases,
  SPLIT_SEED,
} from "../core/datasets.ts";
import { accuracy, type ConvlensSidecar, intFlag, type TrainResult } from "./train_mnist.ts";

/**
 * Builds the canvas ConvNet (uncompiled), every layer named, initializers seeded:
 * conv1, bn1, pool1, conv2, bn2, pool2, conv3, bn3, conv4, bn4, pool3, conv5, bn5,
 * gap (global average pooling), dropout, logits, probs. Each `convN` is a 3x3 ReLU
 * convolution (its output is the rectified feature map); `bnN` batch-normalizes it.
 *
 * @param seed Seed of the initializers and of dropout.
 * @returns The model, input `[64, 64, 1]` in [0, 1], output 10 probabilities.
 */
export function buildCanvasModel(seed: number): tf.Sequential {
  let s = seed * 1000 + 500;
  const model = tf.sequential({ name: "canvas" });
  const conv = (n: number, filters: number) => {
    model.add(tf.layers.conv2d({
      name: `conv${n}`,
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: tf.initializers.heNormal({ seed: ++s }),
      ...(n === 1 ? { inputShape: [CANVAS_SIZE, CANVAS_SIZE, 1] } : {}),
    }));
    model.add(tf.layers.batchNormalization({ name: `bn${n}`, momentum: 0.9 }));
  };
  const pool = (name: string) => model.add(tf.layers.maxPooling2d({ name, poolSize: 2 }));
  conv(1, 16);
  pool("pool1");
  conv(2, 32);
  pool("pool2");
  conv(3, 32);
  conv(4, 64);
  pool("pool3");
  conv(5, 64);
  model.add(tf.layers.globalAveragePooling2d({ name: "gap" }));
  model.add(tf.layers.dropout({ name: "dropout", rate: 0.2, seed: ++s }));
  model.add(
    tf.layers.dense({
      name: "logits",
      units: 10,
      kernelInitializer: tf.initializers.glorotUniform({ seed: ++s }),
    }),
  );
  model.add(tf.layers.activation({ name: "probs", activation: "softmax" }));
  return model;
}

/**
 * Sets every batch-normalization layer's moving mean and variance to the statistics
 * of its input over the given images, layer after layer (each with the layers before
 * it already set), so that inference matches what the layers saw in training.
 *
 * @param model A chain of layers (Sequential) with `batchNormalization` layers.
 * @param images Training images to measure on, `[n, h, w, c]`.
 * @param batchSize Images per forward pass.
 * @returns When every layer is set; no tensors are left behind.
 */
export async function recalibrateBatchNorm(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize = 256,
): Promise<void> {
  const n = images.shape[0];
  for (let i = 1; i < model.layers.length; i++) {
    const bn = model.layers[i];
    if (bn.getClassName() !== "BatchNormalization") continue;
    const probe = tf.model({
      inputs: model.inputs,
      outputs: model.layers[i - 1].output as tf.SymbolicTensor,
    });
    let sum: tf.Tensor1D | undefined, sq: tf.Tensor1D | undefined;
    for (let b = 0; b < n; b += batchSize) {
      const m = Math.min(batchSize, n - b);
      const [s1, s2] = tf.tidy(() => {
        const a = probe.predict(images.slice([b, 0, 0, 0], [m, -1, -1, -1])) as tf.Tensor4D;
        const flat = a.reshape([-1, a.shape[3]]);
        const one = flat.sum(0) as tf.Tensor1D, two = flat.square().sum(0) as tf.Tensor1D;
        return [sum ? sum.add(one) : one, sq ? sq.add(two) : two] as tf.Tensor1D[];
      });
      sum?.dispose();
      sq?.dispose();
      sum = s1;
      sq = s2;
    }
    const count = n * (model.layers[i - 1].outputShape as number[]).slice(1, 3)
      .reduce((p, d) => p * d, 1);
    const weights = bn.getWeights();
    const [mean, variance] = tf.tidy(() => {
      const mu = sum!.div(count);
      return [mu, sq!.div(count).sub(mu.square()).relu()];
    });
    sum!.dispose();
    sq!.dispose();
    bn.setWeights([weights[0], weights[1], mean, variance]);
    mean.dispose();
    variance.dispose();
    await tf.nextFrame();
  }
}

/** Training canvases for {@linkcode recalibrateBatchNorm}: a window no epoch uses. */
async function calibrationCanvases(count: number): Promise<tf.Tensor4D> {
  const a = await canvasArrays({ part: "train", count, offset: 2_000_000_000 });
  return tf.tensor4d(a.pixels, [count, CANVAS_SIZE, CANVAS_SIZE, 1]);
}

/** Options of {@linkcode trainCanvas}. */
export interface TrainCanvasOptions {
  /** Passes; each pass sees `perEpoch` fresh training canvases. @default 4 */
  epochs?: number;
  /** Training canvases per epoch (generated in chunks, new ones each epoch). @default 20000 */
  perEpoch?: number;
  /** Seed of initialization, dropout and order. @default 1 */
  seed?: number;
  /** Canvases per step. @default 64 */
  batchSize?: number;
  /** Learning rate of Adam (a tenth of it for the last 25% of steps). @default 0.003 */
  learningRate?: number;
  /** Print progress. @default true */
  verbose?: boolean;
}

/** What {@linkcode trainCanvas} returns (its training time includes making the canvases). */
export type TrainCanvasResult = TrainResult;

/**
 * Trains the canvas ConvNet on training canvases (training digits only).
 *
 * @param options Epochs, canvases per epoch, seed, batch size, learning rate, printing.
 * @returns The trained model, its held-out accuracy and the training time.
 */
export async function trainCanvas(options: TrainCanvasOptions = {}): Promise<TrainCanvasResult> {
  const epochs = options.epochs ?? 4;
  const perEpoch = options.perEpoch ?? 20000;
  const seed = options.seed ?? 1;
  const batchSize = options.batchSize ?? 64;
  const lr = options.learningRate ?? 0.003;
  const verbose = options.verbose ?? true;
  const chunk = 2048;
  const plane = CANVAS_SIZE * CANVAS_SIZE;

  const model = buildCanvasModel(seed);
  model.compile({
    optimizer: tf.train.adam(lr),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  const held = await heldOutCanvases({ count: 2000 });
  const probe = {
    images: held.images.slice(0, 500) as tf.Tensor4D,
    labels: held.labels.slice(0, 500),
  };
  let trainMs = 0, step = 0;
  const dropAt = Math.floor(epochs * Math.floor(perEpoch / batchSize) * 0.75);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0, accSum = 0, steps = 0;
    for (let c = 0; c < perEpoch; c += chunk) {
      const n = Math.min(chunk, perEpoch - c);
      // Canvas k of the training part shows training digit k mod 8000 at a new place:
      // each epoch takes the next window, so no canvas is seen twice.
      const a = await canvasArrays({
        part: "train",
        count: n,
        offset: (seed - 1) * 10_000_000 + epoch * perEpoch + c,
      });
      for (let b = 0; b + batchSize <= n; b += batchSize) {
        if (step++ === dropAt) {
          (model.optimizer as unknown as { learningRate: number }).learningRate = lr / 10;
        }
        const x = tf.tensor4d(
          a.pixels.subarray(b * plane, (b + batchSize) * plane),
          [batchSize, CANVAS_SIZE, CANVAS_SIZE, 1],
        );
        const y = tf.tidy(() =>
          tf.oneHot(tf.tensor1d(a.labels.slice(b, b + batchSize), "int32"), 10)
        );
        const [loss, acc] = await model.trainOnBatch(x, y) as number[];
        x.dispose();
        y.dispose();
        lossSum += loss;
        accSum += acc;
        steps++;
      }
      if (verbose) {
        Deno.stdout.writeSync(
          new TextEncoder().encode(
            `\repoch ${epoch + 1}: ${c + n}/${perEpoch}, loss ${(lossSum / steps).toFixed(4)}, ` +
              `acc ${(accSum / steps).toFixed(4)}, ${
                ((performance.now() - t0) / 1000).toFixed(0)
              } s`,
          ),
        );
      }
    }
    trainMs += performance.now() - t0;
    if (verbose) {
      const acc = await accuracy(model, probe.images, probe.labels);
      console.log(`, held-out acc (500) ${acc.toFixed(4)}`);
    }
  }
  probe.images.dispose();
  const tCal = performance.now();
  const cal = await calibrationCanvases(2048);
  await recalibrateBatchNorm(model, cal);
  cal.dispose();
  trainMs += performance.now() - tCal;
  const heldOutAccuracy = await accuracy(model, held.images, held.labels);
  held.images.dispose();
  return { model, heldOutAccuracy, trainSeconds: trainMs / 1000, epochs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      epochs: { type: "string", default: "4" },
      "per-epoch": { type: "string", default: "20000" },
      seed: { type: "string", default: "1" },
      out: { type: "string", default: "models/canvas" },
      backend: { type: "string" },
      batch: { type: "string", default: "64" },
      lr: { type: "string", default: "0.003" },
      finish: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A scripts/train_canvas.ts [--epochs 4] [--per-epoch 20000] [--seed 1]\n" +
        "       [--out models/canvas] [--backend auto|wasm|webgpu|cpu] [--batch 64] [--lr 0.003]\n" +
        "       [--finish DIR: only recalibrate batch norm of the model trained in DIR, measure, save]",
    );
    return;
  }
  const epochs = intFlag("epochs", values.epochs, 1);
  const perEpoch = intFlag("per-epoch", values["per-epoch"], 64);
  const seed = intFlag("seed", values.seed, 1);
  const batchSize = intFlag("batch", values.batch, 1);
  const learningRate = Number(values.lr);
  if (!(learningRate > 0 && learningRate < 1)) {
    throw new RangeError(`--lr ${values.lr} is invalid: give a number in (0, 1)`);
  }
  const backend = await initBackend(values.backend);
  let r: TrainCanvasResult;
  let note: string | undefined;
  if (values.finish) {
    // A model trained before batch-norm recalibration was part of training: set its
    // statistics now; its training time is taken from its sidecar, plus this step.
    const t0 = performance.now();
    const model = (await loadNet(values.finish)).model as tf.Sequential;
    const old = JSON.parse(await Deno.readTextFile(`${values.finish}/convlens.json`));
    const cal = await calibrationCanvases(2048);
    await recalibrateBatchNorm(model, cal);
    cal.dispose();
    const secs = (performance.now() - t0) / 1000 + Number(old.trainSeconds);
    const held = await heldOutCanvases({ count: 2000 });
    const heldOutAccuracy = await accuracy(model, held.images, held.labels);
    held.images.dispose();
    r = { model, heldOutAccuracy, trainSeconds: secs, epochs };
    note = `trained by "command" (batch-norm statistics then recalibrated with --finish; ` +
      `held-out accuracy before that ${old.heldOutAccuracy})`;
  } else {
    r = await trainCanvas({ epochs, perEpoch, seed, batchSize, learningRate });
  }
  console.log(
    `held-out accuracy ${(r.heldOutAccuracy * 100).toFixed(2)}% on 2000 canvases, ` +
      `${r.epochs} epochs x ${perEpoch} canvases, training ${r.trainSeconds.toFixed(1)} s ` +
      `wall-clock, backend ${backend}`,
  );
  const out = values.out!;
  await saveLayersModel(r.model, out);
  const sidecar: ConvlensSidecar = {
    name: "canvas",
    input: { height: 64, width: 64, channels: 1, range: [0, 1], mean: [0], std: [1] },
    labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    logits: "logits",
    probs: "probs",
    heldOutAccuracy: Number(r.heldOutAccuracy.toFixed(4)),
    trainSeconds: Number(r.trainSeconds.toFixed(1)),
    backend,
    epochs: r.epochs,
    canvasesPerEpoch: perEpoch,
    seed,
    data: "64x64 canvases of core/datasets.ts canvasSet: one MNIST digit (scale 0.8-1.6, random " +
      "place) among faint fragments of others; training canvases from the 8000 training digits, " +
      `held-out from the 2000 held-out digits (split seed ${SPLIT_SEED}, canvas seed ${CANVAS_SEED})`,
    boxes: "each canvas's digit box {y0,x0,y1,x1} (pixels, y1/x1 exclusive) comes with it: " +
      "heldOutCanvases({count, offset}) returns {images, labels, boxes}",
    command: `deno run -A scripts/train_canvas.ts --epochs ${epochs} --per-epoch ${perEpoch} ` +
      `--seed ${seed} --batch ${batchSize} --lr ${learningRate} --backend ${backend}`,
    ...(note ? { note } : {}),
  };
  await writeFileAtomic(`${out}/convlens.json`, JSON.stringify(sidecar, null, 2) + "\n");
  r.model.dispose();
  console.log(`saved ${out}/model.json, weights.bin, convlens.json`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`train_canvas: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
