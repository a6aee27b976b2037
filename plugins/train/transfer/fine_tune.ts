/**
 * Fine-tuning: a pretrained base nested as one layer inside a new model with a
 * new head, all but its last N layers frozen ("finetune a few layers" /
 * "a larger number of layers"), trained with `fit`.
 *
 * Batch norm in the frozen part: tfjs's `trainable = false` on a
 * BatchNormalization layer only freezes gamma and beta; under `training: true`
 * (which `fit` passes to the whole model) the layer still normalizes with the
 * batch's statistics and moves its moving mean and variance towards them, so
 * a frozen base drifts with every batch of the new data (the Keras pitfall
 * that made TF 2 run frozen batch norm in inference mode). Here each frozen
 * batch-norm layer is switched to inference mode (its own `call` sees
 * `training: false`) for as long as it stays frozen; {@linkcode batchNormWarnings}
 * names the frozen ones that would still update, e.g. in a model loaded again
 * from disk (`trainable` is saved, the switch is not: call
 * {@linkcode freezeAllButLast} or {@linkcode keepFrozenBatchNormInInference} after loading).
 *
 * The model is a Sequential `[base, (gap), logits, probs]` with the base a
 * functional model named `base`: saved with `saveLayersModel` it loads
 * again through `loadNet`, and its base's layers answer to paths such as
 * `base/conv2` in every plugin.
 *
 * @example Freeze all but the last layer of a small base
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { freezeAllButLast, transferModel } from "./fine_tune.ts";
 * const base = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: "c1" }),
 *   tf.layers.conv2d({ filters: 2, kernelSize: 3, name: "c2" }),
 * ] });
 * const model = transferModel(base, 3);
 * const plan = freezeAllButLast(model, 1);
 * if (plan.trainable.join() !== "c2" || plan.frozen.join() !== "c1") throw new Error("plan");
 * model.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { fit, type FitOptions, type FitResult } from "../../../core/train/fit.ts";
import type { DataSource } from "../../../core/data/source.ts";
import type { LinearProbe } from "./probes.ts";

/** The name of the nested base inside a transfer model. */
export const BASE_NAME = "base";

/** Options of {@linkcode transferModel}. */
export interface TransferModelOptions {
  /** Cut the base at this layer (its output feeds the head). @default the base's output */
  cutAt?: string;
  /** Seed of the head's initializer. @default 0 */
  seed?: number;
  /** The new model's name. @default "transfer" */
  name?: string;
}

/**
 * A base's layers up to `cutAt` as a functional model named `base`, sharing
 * the base's weights.
 *
 * @param base The pretrained model.
 * @param cutAt The layer whose output ends the new base. @default its output
 * @returns The cut base.
 * @throws {RangeError} for an unknown layer, listing the base's layers.
 */
export function cutBase(base: tf.LayersModel, cutAt?: string): tf.LayersModel {
  let out = base.outputs[0];
  if (cutAt !== undefined) {
    const layer = base.layers.find((l) => l.name === cutAt);
    if (!layer) {
      throw new RangeError(
        `Unknown layer "${cutAt}" to cut the base at; its layers are ${
          base.layers.map((l) => l.name).join(", ")
        }`,
      );
    }
    out = layer.output as tf.SymbolicTensor;
  }
  return tf.model({ inputs: base.inputs, outputs: out, name: BASE_NAME });
}

/**
 * A new model: the base (cut at `cutAt`) nested as the layer `base`, a global
 * average pool where the base ends in a map, then a new head `logits`
 * (Glorot-uniform, seeded) and its `probs` softmax.
 *
 * @param base The pretrained model (its weights are shared, not copied).
 * @param classes Classes of the new task.
 * @param options Cut, seed, name.
 * @returns The model (the caller disposes of it; that frees the base's weights too).
 * @throws {RangeError} for fewer than two classes or an unknown cut layer.
 */
export function transferModel(
  base: tf.LayersModel,
  classes: number,
  options: TransferModelOptions = {},
): tf.Sequential {
  if (!(Number.isInteger(classes) && classes >= 2)) {
    throw new RangeError(`classes ${classes} is invalid: give 2 or more`);
  }
  const nested = cutBase(base, options.cutAt);
  const model = tf.sequential({ name: options.name ?? "transfer" });
  model.add(nested);
  if ((nested.outputs[0].shape.length ?? 2) > 2) {
    model.add(tf.layers.globalAveragePooling2d({ name: "gap" }));
  }
  model.add(tf.layers.dense({
    name: "logits",
    units: classes,
    kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed ?? 0 }),
  }));
  model.add(tf.layers.activation({ name: "probs", activation: "softmax" }));
  return model;
}

/** The nested base of a transfer model. */
function baseOf(model: tf.LayersModel): tf.LayersModel {
  const base = model.layers.find((l) => l.name === BASE_NAME);
  if (!(base instanceof tf.LayersModel)) {
    throw new RangeError(
      `This model has no nested model "${BASE_NAME}": build it with transferModel(base, classes)`,
    );
  }
  return base;
}

/** The layers of a base that count for freezing (its input layer does not). */
function baseLayers(base: tf.LayersModel): tf.layers.Layer[] {
  return base.layers.filter((l) => l.getClassName() !== "InputLayer");
}

/** What {@linkcode freezeAllButLast} did. */
export interface FreezePlan {
  /** Base layers frozen, in order. */
  frozen: string[];
  /** Base layers left to train, in order. */
  trainable: string[];
  /** Frozen batch-norm layers switched to inference mode. */
  batchNormInInference: string[];
}

/**
 * How many of a base's last layers to train so that its last `k` layers with
 * weights (convs, dense, batch norm) train.
 *
 * @param model A transfer model.
 * @param k Layers with weights to train.
 * @returns N for {@linkcode freezeAllButLast}.
 * @throws {RangeError} when the base has fewer than `k` layers with weights.
 */
export function lastLayersWithWeights(model: tf.LayersModel, k: number): number {
  const layers = baseLayers(baseOf(model));
  const weighted = layers.map((l, i) => [l, i] as const).filter(([l]) =>
    l.weights.length > 0 && l.getClassName() !== "BatchNormalization"
  );
  if (!(Number.isInteger(k) && k >= 0 && k <= weighted.length)) {
    throw new RangeError(
      `Cannot train the last ${k} weight layers: the base has ${weighted.length} ` +
        `(${weighted.map(([l]) => l.name).join(", ")}); give 0 to ${weighted.length}`,
    );
  }
  return k === 0 ? 0 : layers.length - weighted[weighted.length - k][1];
}

/**
 * Freezes all but the last `n` layers of a transfer model's base (the head
 * always trains), and puts the frozen batch-norm layers in inference mode.
 *
 * @param model A transfer model (see {@linkcode transferModel}).
 * @param n Base layers to train, from the top (0: only the head trains).
 * @returns Which layers are frozen and which train.
 * @throws {RangeError} for `n` out of 0..(the base's layer count).
 */
export function freezeAllButLast(model: tf.LayersModel, n: number): FreezePlan {
  const base = baseOf(model);
  const layers = baseLayers(base);
  if (!(Number.isInteger(n) && n >= 0 && n <= layers.length)) {
    throw new RangeError(
      `Cannot train the last ${n} layers: the base has ${layers.length} layers ` +
        `(${layers.map((l) => l.name).join(", ")}); give 0 to ${layers.length}`,
    );
  }
  base.trainable = true;
  layers.forEach((l, i) => l.trainable = i >= layers.length - n);
  for (const l of model.layers) if (l !== base) l.trainable = true;
  return {
    frozen: layers.slice(0, layers.length - n).map((l) => l.name),
    trainable: layers.slice(layers.length - n).map((l) => l.name),
    batchNormInInference: keepFrozenBatchNormInInference(model),
  };
}

const INFERENCE = Symbol("convlens frozen batch norm in inference mode");

/** A model's layers, those of nested models included, with whether a container above froze them. */
function walk(
  model: tf.LayersModel,
  frozenAbove = false,
): { layer: tf.layers.Layer; path: string; frozen: boolean }[] {
  const out: { layer: tf.layers.Layer; path: string; frozen: boolean }[] = [];
  for (const l of model.layers) {
    const frozen = frozenAbove || !l.trainable;
    if (l instanceof tf.LayersModel) {
      for (const inner of walk(l, frozen)) {
        out.push({ ...inner, path: `${l.name}/${inner.path}` });
      }
    } else out.push({ layer: l, path: l.name, frozen });
  }
  return out;
}

/** Whether a layer is frozen now: its own flag, or its weights frozen by a container above. */
function isFrozen(layer: tf.layers.Layer): boolean {
  // deno-lint-ignore no-explicit-any
  const own = (layer as any)._trainableWeights as tf.LayerVariable[] | undefined;
  return !layer.trainable ||
    (own !== undefined && own.length > 0 && own.every((w) => !w.trainable));
}

/**
 * Makes every batch-norm layer of `model` (nested ones included) run in
 * inference mode whenever it is frozen: normalized by its moving statistics,
 * which then stay as they are. Unfrozen layers train as usual. Idempotent.
 *
 * @param model The model.
 * @returns The paths of the batch-norm layers frozen now.
 */
export function keepFrozenBatchNormInInference(model: tf.LayersModel): string[] {
  const frozenNow: string[] = [];
  for (const { layer, path, frozen } of walk(model)) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    // deno-lint-ignore no-explicit-any
    const bn = layer as any;
    if (!bn[INFERENCE]) {
      const call = bn.call.bind(bn);
      bn[INFERENCE] = { off: false };
      bn.call = (inputs: tf.Tensor, kwargs: Record<string, unknown> = {}) =>
        call(inputs, !bn[INFERENCE].off && isFrozen(bn) ? { ...kwargs, training: false } : kwargs);
    }
    bn[INFERENCE].off = false;
    if (frozen) frozenNow.push(path);
  }
  return frozenNow;
}

/**
 * The frozen batch-norm layers that `fit` would still update: normalized by
 * each batch's statistics and their moving mean and variance moved, because
 * `trainable = false` alone does not stop that in tfjs.
 *
 * @param model The model.
 * @returns One warning per such layer (empty when there is none).
 */
export function batchNormWarnings(model: tf.LayersModel): string[] {
  return walk(model)
    .filter(({ layer, frozen }) =>
      layer.getClassName() === "BatchNormalization" && frozen &&
      // deno-lint-ignore no-explicit-any
      !((layer as any)[INFERENCE] && !(layer as any)[INFERENCE].off)
    )
    .map(({ path }) =>
      `Batch-norm layer "${path}" is frozen but would still update its moving mean and ` +
      "variance (and normalize with batch statistics) under fit's training mode; call " +
      "keepFrozenBatchNormInInference(model) (or freezeAllButLast) before training"
    );
}

/**
 * Sets a transfer model's head to a linear probe trained on the features that
 * feed it (LP-FT: fine-tuning from a linear probe's head distorts the
 * pretrained features less than from a random one, Kumar et al. 2022). The
 * probe's standardization is folded in: `W' = W / std`, `b' = b - (mean / std) W`.
 *
 * @param model A transfer model.
 * @param probe A probe trained on the head's input features (e.g. the base's
 *   output, pooled as the model pools it).
 * @throws {RangeError} when the probe's size does not match the head.
 */
export function setHeadFromProbe(model: tf.LayersModel, probe: LinearProbe): void {
  const head = model.getLayer("logits");
  const [kernel] = head.getWeights();
  const [d, k] = kernel.shape;
  if (d !== probe.dims || k !== probe.classes) {
    throw new RangeError(
      `The probe maps ${probe.dims} features to ${probe.classes} classes, the head ` +
        `${d} to ${k}; train the probe on the features that feed the head`,
    );
  }
  const [w, b] = tf.tidy(() => {
    const std = tf.tensor1d(probe.std).reshape([d, 1]);
    const wz = tf.tensor2d(probe.weights, [d, k]).div(std);
    const bias = tf.tensor1d(probe.bias).sub(
      tf.tensor1d(probe.mean).reshape([1, d]).matMul(wz)
        .reshape([k]),
    );
    return [wz, bias];
  });
  head.setWeights([w, b]);
  tf.dispose([w, b]);
}

/** Options of {@linkcode fineTune}: `fit`'s, plus what to train. */
export interface FineTuneOptions extends FitOptions {
  /** Base layers to train, from the top (0: the head only). */
  trainLast: number;
  /**
   * `inference` keeps frozen batch norm in inference mode; `train` leaves
   * tfjs's default (frozen batch norm still updating) and warns. @default "inference"
   */
  batchNorm?: "inference" | "train";
  /** Receives warnings (frozen batch norm that will update). @default none */
  onWarning?: (message: string) => void;
}

/** What {@linkcode fineTune} returns. */
export interface FineTuneResult extends FitResult {
  /** What was frozen and what trained. */
  plan: FreezePlan;
}

/**
 * Freezes all but the last `trainLast` base layers and trains the model with `fit`.
 *
 * @param model A transfer model.
 * @param data Training examples of the new task.
 * @param options What to train, and `fit`'s options.
 * @returns `fit`'s result and the freeze plan.
 * @throws {RangeError} for `trainLast` out of range, or `fit`'s errors.
 */
export async function fineTune(
  model: tf.LayersModel,
  data: DataSource,
  options: FineTuneOptions,
): Promise<FineTuneResult> {
  const plan = freezeAllButLast(model, options.trainLast);
  if ((options.batchNorm ?? "inference") === "train") {
    for (const { layer } of walk(model)) {
      // deno-lint-ignore no-explicit-any
      const mark = (layer as any)[INFERENCE];
      if (mark) mark.off = true;
    }
    plan.batchNormInInference = [];
  }
  for (const w of batchNormWarnings(model)) options.onWarning?.(w);
  const result = await fit(model, data, { logits: "logits", ...options });
  return { ...result, plan };
}
