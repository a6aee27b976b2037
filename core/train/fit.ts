/**
 * `fit`: the training loop of convlens. It trains a tfjs LayersModel on a
 * {@linkcode DataSource} with an optimizer from `optimizers.ts` and a
 * learning-rate schedule, shuffles each epoch under a seed, applies an
 * augmentation hook to each batch (seeded per step), measures loss, accuracy
 * and top-k accuracy on a validation source after each epoch, stops early,
 * saves a checkpoint after each epoch and resumes from one.
 *
 * Every random choice (the order of an epoch, the augmentation of a step,
 * the dropout masks) comes from a generator seeded by (seed, epoch, step)
 * alone, so a run is the same twice, and a run killed after epoch k and
 * resumed from its checkpoint ends with the weights of the run that was never
 * stopped. (tfjs's GaussianNoise, GaussianDropout and AlphaDropout layers draw
 * unseeded noise: a model with them trains, but not repeatably.)
 *
 * @example Two epochs on a tiny problem
 * ```ts
 * import { tf } from "../tf.ts";
 * import { tensorSource } from "../data/source.ts";
 * import { fit } from "./fit.ts";
 * const x = tf.tidy(() => tf.concat([tf.zeros([16, 4, 4, 1]), tf.ones([16, 4, 4, 1])])) as tf.Tensor4D;
 * const data = tensorSource(x, [...Array(16).fill(0), ...Array(16).fill(1)]);
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.flatten({ inputShape: [4, 4, 1] }),
 *     tf.layers.dense({ units: 2, activation: "softmax" }),
 *   ],
 * });
 * const { history } = await fit(model, data, { epochs: 2, batchSize: 8, validation: data });
 * if (history.length !== 2 || !(history[1].valAccuracy! >= 0.5)) throw new Error();
 * model.dispose();
 * x.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { DataSource } from "../data/source.ts";
import { mixSeed, type Random, seededRandom } from "../random.ts";
import { type Progress, silentProgress } from "../progress.ts";
import { makeOptimizer, type Optimizer, type OptimizerOptions } from "./optimizers.ts";
import { learningRateAt, type Schedule } from "./schedule.ts";
import { type Checkpoint, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { evaluate, lossOf, type OutputKind, outputKind, predicted } from "./metrics.ts";

/**
 * A batch transform applied before each training step: images in, images of
 * the same shape out, drawing its random parameters from `rng` (seeded by
 * the run's seed, epoch and step).
 */
export type Augment = (x: tf.Tensor4D, rng: Random, step: number) => tf.Tensor4D;

/**
 * A loss in place of cross-entropy on the class labels, for models whose output is
 * not class scores (a box regression head): the scalar loss of a batch from the
 * model's output, its labels, the indices of its examples and the source they came
 * from (the training or the validation source), so that targets other than the
 * labels can be looked up by index.
 */
export type BatchLoss = (
  output: tf.Tensor,
  y: tf.Tensor1D,
  indices: readonly number[],
  source: DataSource,
) => tf.Scalar;

/** When to stop before the last epoch. */
export interface EarlyStopping {
  /** What must improve. @default "valLoss" */
  monitor?: "valLoss" | "valAccuracy";
  /** Epochs without improvement before stopping. */
  patience: number;
  /** Smallest change that counts as an improvement. @default 0 */
  minDelta?: number;
  /** Put the best epoch's weights back at the end. @default true */
  restoreBest?: boolean;
}

/** What one epoch measured. */
export interface EpochLog {
  /** Epoch number, from 1. */
  epoch: number;
  /** Mean training loss over the epoch's steps. */
  loss: number;
  /** Training accuracy over the epoch's steps (augmented images, training mode; NaN under a custom `loss`). */
  accuracy: number;
  /** Validation loss, when a validation source is given. */
  valLoss?: number;
  /** Validation accuracy. */
  valAccuracy?: number;
  /** Validation top-k accuracy (k = `topK`). */
  valTopK?: number;
  /** Learning rate of the epoch's last step. */
  learningRate: number;
  /** Wall-clock seconds of the epoch's training steps (without validation). */
  seconds: number;
}

/** Options of {@linkcode fit}. */
export interface FitOptions {
  /** Passes over the data. @default 10 */
  epochs?: number;
  /** Examples per step. @default 64 */
  batchSize?: number;
  /** The optimizer. @default { name: "adam" } */
  optimizer?: OptimizerOptions;
  /** The learning rate per step. @default { kind: "constant", learningRate: 0.001 } */
  schedule?: Schedule;
  /** Seed of shuffling and augmentation (initializers are the model's). @default 0 */
  seed?: number;
  /** A batch transform applied to each training batch. @default none */
  augment?: Augment;
  /** Measured after each epoch. @default none */
  validation?: DataSource;
  /** k of the top-k accuracy. @default 5 */
  topK?: number;
  /** Stop when the monitored figure stops improving. @default none */
  earlyStopping?: EarlyStopping;
  /**
   * A folder for a checkpoint after each epoch; when it already holds one of
   * this run, training resumes after its last epoch. @default none
   */
  checkpoint?: string;
  /**
   * The layer whose output is the logits, when the model ends in a softmax
   * (more exact than the log of a probability). @default the model's output
   */
  logits?: string;
  /**
   * A loss of the model's output in place of cross-entropy on the labels; the
   * output is then not read as classes: no class checks, accuracy `NaN`, and the
   * validation source gives only `valLoss` (this loss, inference mode).
   * @default cross-entropy on the class labels
   */
  loss?: BatchLoss;
  /** Drop the last, smaller batch of an epoch (keeps batch-norm statistics steady). @default true */
  dropLast?: boolean;
  /** Progress reporting. @default silent */
  progress?: Progress;
  /** Called after each epoch with its log and the history so far. */
  onEpoch?: (log: EpochLog, history: readonly EpochLog[]) => void | Promise<void>;
}

/** What {@linkcode fit} returns. */
export interface FitResult {
  /** One log per epoch run (those of a resumed run included). */
  history: EpochLog[];
  /** The epoch whose weights the model holds at the end (the best one under early stopping). */
  bestEpoch: number;
  /** Stopped before the last epoch by early stopping. */
  stoppedEarly: boolean;
  /** Epochs taken from a checkpoint instead of run (0 when not resumed). */
  resumedEpochs: number;
  /** Wall-clock seconds of all training steps, those of resumed epochs included. */
  trainSeconds: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name} ${v} is invalid: give a positive integer`);
  }
  return v;
}

/** The layers of a model, those of nested models included. */
function allLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => l instanceof tf.LayersModel ? [l, ...allLayers(l)] : [l]);
}

/**
 * The Dropout layers, whose masks come from their `seed`. tfjs draws a
 * seeded layer's mask from the same seed at every call, so each step would
 * drop the same units (pruning, not dropout); unseeded, the masks are not
 * repeatable. `fit` gives each layer a fresh seed per step, derived from the
 * run's seed, and puts the layers' own seeds back at the end. Layers of
 * other classes that draw masks from a `seed` (DropConnect) ask for the same
 * by a `reseedPerStep` property.
 */
function dropoutLayers(model: tf.LayersModel): { layer: { seed?: number }; seed?: number }[] {
  return allLayers(model)
    .filter((l) =>
      ["Dropout", "SpatialDropout1D"].includes(l.getClassName()) ||
      (l as unknown as { reseedPerStep?: boolean }).reseedPerStep === true
    )
    .map((l) => {
      const layer = l as unknown as { seed?: number };
      return { layer, seed: layer.seed };
    });
}

function variablesOf(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** A model sharing `model`'s weights whose output is the named layer's. */
function logitsModel(model: tf.LayersModel, layer: string): tf.LayersModel {
  let out: tf.SymbolicTensor;
  try {
    out = model.getLayer(layer).output as tf.SymbolicTensor;
  } catch {
    throw new RangeError(
      `logits layer "${layer}" is not in the model; give one of ${
        model.layers.map((l) => l.name).join(", ")
      }`,
    );
  }
  return tf.model({ inputs: model.inputs, outputs: out });
}

/** Mean of a custom loss over a validation source, in inference mode. */
async function validationLoss(
  model: tf.LayersModel,
  data: DataSource,
  loss: BatchLoss,
): Promise<number> {
  let sum = 0;
  for (let start = 0; start < data.size; start += 250) {
    const indices = Array.from({ length: Math.min(250, data.size - start) }, (_, i) => start + i);
    const { x, y } = await data.batch(indices);
    const l = tf.tidy(() => loss(model.predict(x) as tf.Tensor, y, indices, data));
    sum += (await l.data())[0] * indices.length;
    tf.dispose([x, y, l]);
  }
  return sum / data.size;
}

function improved(
  log: EpochLog,
  best: number | undefined,
  e: EarlyStopping,
): { value: number; better: boolean } {
  const monitor = e.monitor ?? "valLoss";
  const value = log[monitor];
  if (value === undefined) {
    throw new RangeError(`early stopping on ${monitor} needs a validation source`);
  }
  const delta = e.minDelta ?? 0;
  const better = best === undefined ||
    (monitor === "valLoss" ? value < best - delta : value > best + delta);
  return { value, better };
}

/**
 * Trains `model` in place on `data`.
 *
 * @param model A LayersModel whose output is class scores: probabilities
 *   (softmax), logits (linear) or one sigmoid unit (binary).
 * @param data The training examples.
 * @param options Epochs, batch size, optimizer, schedule, seed, augmentation,
 *   validation, early stopping, checkpoint.
 * @returns The history and how the run ended.
 * @throws {RangeError} for options out of range, or data whose image shape or
 *   classes do not fit the model.
 */
export async function fit(
  model: tf.LayersModel,
  data: DataSource,
  options: FitOptions = {},
): Promise<FitResult> {
  const epochs = positiveInt("epochs", options.epochs ?? 10);
  const batchSize = positiveInt("batchSize", options.batchSize ?? 64);
  const topK = positiveInt("topK", options.topK ?? 5);
  const seed = options.seed ?? 0;
  const schedule: Schedule = options.schedule ?? { learningRate: 0.001 };
  const progress = options.progress ?? silentProgress;
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.some((d, i) => d !== null && d !== data.shape[i])) {
    throw new RangeError(
      `${data.name} holds ${data.shape.join("x")} images but the model takes ` +
        `${inShape.join("x")}; resize the data or give a model of that input`,
    );
  }
  const scorer = options.logits ? logitsModel(model, options.logits) : model;
  const custom = options.loss;
  const kind: OutputKind = options.logits || custom ? "logits" : outputKind(model);
  const classes = kind === "binary" ? 2 : (scorer.outputs[0].shape.at(-1) as number);
  if (!custom && data.classes.length > classes) {
    throw new RangeError(
      `${data.name} has ${data.classes.length} classes but the model scores ${classes}`,
    );
  }
  const dropLast = options.dropLast ?? true;
  const perEpoch = dropLast && data.size >= batchSize
    ? Math.floor(data.size / batchSize)
    : Math.ceil(data.size / batchSize);
  const totalSteps = perEpoch * epochs;
  const variables = variablesOf(model);
  const optimizer: Optimizer = makeOptimizer(options.optimizer ?? { name: "adam" });
  const history: EpochLog[] = [];
  let best: number | undefined, bestEpoch = 0, wait = 0, start = 0, trainSeconds = 0;
  let bestWeights: tf.Tensor[] | undefined;
  const early = options.earlyStopping;
  const restoreBest = early?.restoreBest ?? true;
  const dropouts = dropoutLayers(model);
  try {
    const saved: Checkpoint | null = options.checkpoint
      ? await readCheckpoint(options.checkpoint, model, optimizer, variables, { seed, epochs })
      : null;
    if (saved) {
      start = saved.epoch;
      history.push(...saved.history);
      ({ best, bestEpoch, wait } = saved);
      trainSeconds = saved.history.reduce((s, h) => s + h.seconds, 0);
      bestWeights = saved.bestWeights;
    }
    let stoppedEarly = saved?.stopped ?? false;
    for (let epoch = start; epoch < epochs && !stoppedEarly; epoch++) {
      const order = seededRandom(mixSeed(seed, epoch)).shuffle(
        Array.from({ length: data.size }, (_, i) => i),
      );
      progress.start(`epoch ${epoch + 1}/${epochs}`);
      const t0 = performance.now();
      let lossSum = 0, right = 0, seen = 0, lr = 0;
      for (let b = 0; b < perEpoch; b++) {
        const step = epoch * perEpoch + b;
        const indices = order.slice(b * batchSize, (b + 1) * batchSize);
        const batch = await data.batch(indices);
        lr = learningRateAt(schedule, step, totalSteps, perEpoch);
        dropouts.forEach((d, k) => d.layer.seed = mixSeed(seed, epoch, b, 2, k) & 0x7fffffff);
        const x = options.augment
          ? options.augment(batch.x, seededRandom(mixSeed(seed, epoch, b, 1)), step)
          : batch.x;
        let correct: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const scores = scorer.apply(x, { training: true }) as tf.Tensor;
          if (custom) return custom(scores, batch.y, indices, data);
          correct = tf.keep(predicted(scores, kind).equal(batch.y).sum());
          return lossOf(scores, batch.y, kind);
        }, variables);
        optimizer.step(variables.map((v) => [v, grads[v.name]] as const), lr);
        lossSum += (await value.data())[0] * indices.length;
        right += correct ? (await correct.data())[0] : NaN;
        seen += indices.length;
        tf.dispose([
          value,
          ...(correct ? [correct] : []),
          ...Object.values(grads),
          batch.x,
          batch.y,
        ]);
        if (x !== batch.x) x.dispose();
        progress.update(b + 1, perEpoch);
      }
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      const log: EpochLog = {
        epoch: epoch + 1,
        loss: lossSum / seen,
        accuracy: right / seen,
        learningRate: lr,
        seconds,
      };
      if (options.validation && custom) {
        log.valLoss = await validationLoss(scorer, options.validation, custom);
      } else if (options.validation) {
        const m = await evaluate(scorer, options.validation, { kind, topK, batchSize: 250 });
        log.valLoss = m.loss;
        log.valAccuracy = m.accuracy;
        log.valTopK = m.topK;
      }
      history.push(log);
      progress.end(
        `loss ${log.loss.toFixed(4)} acc ${log.accuracy.toFixed(4)}` +
          (log.valAccuracy !== undefined ? ` val acc ${log.valAccuracy.toFixed(4)}` : ""),
      );
      if (early) {
        const { value, better } = improved(log, best, early);
        if (better) {
          best = value;
          bestEpoch = log.epoch;
          wait = 0;
          if (restoreBest) {
            tf.dispose(bestWeights ?? []);
            bestWeights = model.getWeights().map((w) => w.clone());
          }
        } else if (++wait >= early.patience) stoppedEarly = true;
      } else bestEpoch = log.epoch;
      if (options.checkpoint) {
        await writeCheckpoint(options.checkpoint, {
          model,
          optimizer,
          variables,
          run: { seed, epochs },
          epoch: epoch + 1,
          history,
          best,
          bestEpoch,
          wait,
          stopped: stoppedEarly,
          bestWeights,
        });
      }
      await options.onEpoch?.(log, history);
    }
    if (early && restoreBest && bestWeights) model.setWeights(bestWeights);
    return {
      history,
      bestEpoch,
      stoppedEarly,
      resumedEpochs: start,
      trainSeconds,
    };
  } finally {
    for (const d of dropouts) d.layer.seed = d.seed;
    tf.dispose(bestWeights ?? []);
    optimizer.dispose();
  }
}
