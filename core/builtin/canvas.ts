/**
 * The built-in `canvas` model: a ConvNet with batch normalization for 64x64
 * canvases that each hold one MNIST digit at a random place and scale among
 * faint fragments of others (`canvasSet` in `core/datasets.ts`), the canvases
 * as a data source, and the recipe that trains it. The digit's box is known for
 * every canvas, so attribution maps and localization heads can be checked
 * against it.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { CANVAS_SIZE, canvasArrays } from "../datasets.ts";
import { checkIndices, type DataSource } from "../data/source.ts";
import type { FitOptions } from "../train/fit.ts";
import { DIGIT_CLASSES } from "./mnist.ts";
import { addClassifierHead, conv3x3 } from "./_layers.ts";

/**
 * Canvases `offset .. offset + count - 1` of a part as a source; canvas k is
 * the same image every time it is asked for (made from its index alone).
 *
 * @param part Which digits the canvases show.
 * @param count How many canvases.
 * @param offset Index of the first.
 * @returns The source, pixels in [0, 1].
 */
export function canvasSource(part: "train" | "heldOut", count: number, offset = 0): DataSource {
  const plane = CANVAS_SIZE * CANVAS_SIZE;
  // A label costs a whole canvas to make, so labels are kept once made.
  const labels = new Map<number, number>();
  const make = async (i: number) => {
    const a = await canvasArrays({ part, count: 1, offset: offset + i });
    labels.set(i, a.labels[0]);
    return a;
  };
  const source: DataSource = {
    name: `canvas ${part === "train" ? "train" : "held-out"} ${offset}..${offset + count - 1}`,
    size: count,
    shape: [CANVAS_SIZE, CANVAS_SIZE, 1],
    classes: DIGIT_CLASSES,
    range: [0, 1],
    labelOf(i) {
      const known = labels.get(i);
      if (known !== undefined) return known;
      throw new Error(`${source.name}: label ${i} is only known once its canvas was made`);
    },
    async batch(indices) {
      checkIndices(source, indices);
      const pixels = new Float32Array(indices.length * plane);
      const y = new Int32Array(indices.length);
      for (const [k, i] of indices.entries()) {
        const a = await make(i);
        pixels.set(a.pixels, k * plane);
        y[k] = a.labels[0];
      }
      return {
        x: tf.tensor4d(pixels, [indices.length, CANVAS_SIZE, CANVAS_SIZE, 1]),
        y: tf.tensor1d(y, "int32"),
      };
    },
  };
  return source;
}

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
    const first = n === 1 ? [CANVAS_SIZE, CANVAS_SIZE, 1] as [number, number, number] : undefined;
    model.add(conv3x3(`conv${n}`, filters, ++s, first));
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
  addClassifierHead(model, 10, ++s);
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

/**
 * Training canvases for {@linkcode recalibrateBatchNorm}: a window no epoch uses.
 * @param count How many.
 * @returns `[count, 64, 64, 1]` canvases (the caller disposes of them).
 */
export async function calibrationCanvases(count: number): Promise<tf.Tensor4D> {
  const a = await canvasArrays({ part: "train", count, offset: 2_000_000_000 });
  return tf.tensor4d(a.pixels, [count, CANVAS_SIZE, CANVAS_SIZE, 1]);
}

/**
 * How the canvas model is trained: Adam at 0.003, a tenth of it for the last
 * quarter of the steps, 64 canvases a step; each canvas is seen once (the
 * source holds `epochs` x 8,192 distinct canvases and `fit` makes one pass).
 *
 * @param seed Seed of shuffling.
 * @returns `fit` options (without data, validation or progress).
 */
export function canvasFitOptions(seed: number): FitOptions {
  return {
    epochs: 1,
    batchSize: 64,
    seed,
    optimizer: { name: "adam" },
    schedule: { kind: "step", learningRate: 0.003, milestones: [0.75], gamma: 0.1 },
    logits: "logits",
  };
}
