/**
 * Projecting a class score or one unit of a layer back to input space (Zeiler &
 * Fergus 2014): the unit's activations are kept and all others zeroed, and the
 * gradient of what is kept is taken under a ReLU backward rule (`deconv` for the
 * DeconvNet, `guided` for guided backprop, `plain` for the data gradient).
 *
 * @example The strongest neuron of channel 3 of a layer, projected by the DeconvNet
 * ```ts ignore
 * import { projectBack } from "./unit_projection.ts";
 * const { attribution, choices } = await projectBack(net, x, [], "deconv", {
 *   unit: { layer: "conv2", channel: 3 },
 * });
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { gradient, type ReluRule } from "../../core/gradients.ts";
import type { Objective } from "../../core/objective.ts";
import { readOnce } from "./batches.ts";
import { checkBatch, checkTarget, classObjective, type ScoreKind } from "./targets.ts";

/** Which activations of a layer a unit projection keeps. */
export type UnitMode = "strongest" | "neuron" | "channel";

/** The unit modes, for parameter schemas. */
export const UNIT_MODES: readonly UnitMode[] = ["strongest", "neuron", "channel"];

/**
 * A unit of a layer to project back to pixel space (Zeiler & Fergus): one
 * neuron, a whole channel, or the strongest neuron of a channel.
 */
export interface Unit {
  /** The layer. */
  layer: string;
  /** Which activations to keep. @default "strongest" */
  mode?: UnitMode;
  /** The channel (the unit, for a dense layer); -1: the most active one per image. @default -1 */
  channel?: number;
  /** Row of the neuron (`neuron` mode). @default 0 */
  row?: number;
  /** Column of the neuron (`neuron` mode). @default 0 */
  col?: number;
}

/** Where a unit projection found its unit in one image. */
export interface UnitChoice {
  /** Channel (or dense unit). */
  channel: number;
  /** Row (-1 for a whole channel or a dense unit). */
  row: number;
  /** Column (-1 for a whole channel or a dense unit). */
  col: number;
  /** The activation kept (the strongest one of a kept channel). */
  value: number;
}

/**
 * The mask of the activations a unit keeps, for each image of a batch, and where
 * they are. Validates the unit against the layer.
 *
 * @param net The model.
 * @param x The batch.
 * @param unit The unit.
 * @param what The caller, for messages.
 * @returns A 0/1 mask shaped like the layer's activation (the caller's) and the choices.
 * @throws {RangeError} for a channel, row or column out of range (the promise rejects).
 */
export async function unitMask(
  net: Net,
  x: tf.Tensor4D,
  unit: Unit,
  what: string,
): Promise<{ mask: tf.Tensor; choices: UnitChoice[] }> {
  const info = net.layer(unit.layer);
  const mode = unit.mode ?? "strongest";
  if (!UNIT_MODES.includes(mode)) {
    throw new RangeError(
      `${what}: unknown unit mode "${mode}"; use one of ${UNIT_MODES.join(", ")}`,
    );
  }
  const shape = info.outputShape;
  const spatial = shape.length === 3;
  if (!spatial && shape.length !== 1) {
    throw new RangeError(
      `${what}: layer "${unit.layer}" has output [${shape}]; give a layer with a grid (h x w x c) or a vector of units`,
    );
  }
  const channels = shape[shape.length - 1];
  const channel = unit.channel ?? -1;
  if (!Number.isInteger(channel) || channel < -1 || channel >= channels) {
    throw new RangeError(
      `${what}: channel ${channel} is out of range: layer "${unit.layer}" has ${channels} channels (0 to ${
        channels - 1
      }; -1 for the most active)`,
    );
  }
  const [h, w] = spatial ? shape : [1, 1];
  if (spatial && mode === "neuron") {
    const row = unit.row ?? 0, col = unit.col ?? 0;
    if (
      !Number.isInteger(row) || row < 0 || row >= h || !Number.isInteger(col) || col < 0 || col >= w
    ) {
      throw new RangeError(
        `${what}: neuron (${row}, ${col}) is outside layer "${unit.layer}"'s ${h}x${w} grid`,
      );
    }
  }
  const n = x.shape[0];
  const neuronOnly = !spatial || mode === "channel";
  const [mask, chan, pos, kept] = tf.tidy(() => {
    const r = net.forward(x, { taps: [unit.layer], stopAtTaps: true });
    const a = r.taps[unit.layer].reshape([n, h, w, channels]);
    const chan = channel === -1
      ? (a.max([1, 2]) as tf.Tensor2D).argMax(1)
      : tf.fill([n], channel, "int32");
    const chanMask = tf.oneHot(chan as tf.Tensor1D, channels).toFloat().reshape([
      n,
      1,
      1,
      channels,
    ]);
    let mask: tf.Tensor;
    let pos: tf.Tensor;
    if (neuronOnly) {
      mask = tf.mul(tf.ones([n, h, w, 1]), chanMask);
      pos = tf.fill([n], -1, "int32");
    } else if (mode === "neuron") {
      const where = tf.buffer([1, h, w, 1]);
      where.set(1, 0, unit.row ?? 0, unit.col ?? 0, 0);
      mask = tf.mul(where.toTensor(), chanMask);
      pos = tf.fill([n], (unit.row ?? 0) * w + (unit.col ?? 0), "int32");
    } else {
      const inChannel = tf.sum(tf.mul(a, chanMask), 3).reshape([n, h * w]);
      pos = inChannel.argMax(1);
      mask = tf.mul(tf.oneHot(pos as tf.Tensor1D, h * w).toFloat().reshape([n, h, w, 1]), chanMask);
    }
    // The strongest kept activation (the unit's own for a neuron).
    const kept = tf.max(
      tf.add(tf.mul(a, mask), tf.mul(tf.sub(1, mask), -1e30)).reshape([n, -1]),
      1,
    );
    return [mask.reshape([n, ...shape]), chan, pos, kept];
  });
  let c: tf.TypedArray, p: tf.TypedArray, v: tf.TypedArray;
  try {
    [c, p, v] = await Promise.all([readOnce(chan), readOnce(pos), readOnce(kept)]);
  } catch (err) {
    mask.dispose();
    throw err;
  }
  const choices: UnitChoice[] = Array.from({ length: n }, (_, i) => ({
    channel: c[i],
    row: p[i] < 0 ? -1 : Math.floor(p[i] / w),
    col: p[i] < 0 ? -1 : p[i] % w,
    value: v[i],
  }));
  return { mask, choices };
}

/**
 * The objective of a unit projection: `0.5 * sum((a * mask)^2)` per image, whose gradient
 * with respect to the layer's activation `a` is `a * mask`: the layer's
 * activations with all but the kept ones zeroed, as Zeiler & Fergus feed the
 * DeconvNet.
 *
 * @param layer The layer.
 * @param mask The mask from {@linkcode unitMask} (not disposed; keep it alive).
 * @returns The objective.
 */
export function unitObjective(layer: string, mask: tf.Tensor): Objective {
  return {
    name: `unit(${layer})`,
    taps: [layer],
    check: (net) => void net.layer(layer),
    perImage({ result }) {
      const kept = tf.mul(result.taps[layer], mask);
      const n = kept.shape[0];
      return tf.mul(0.5, tf.sum(tf.square(kept).reshape([n, -1]), 1)) as tf.Tensor1D;
    },
  };
}

/** Options of {@linkcode projectBack}. */
export interface ProjectionOptions {
  /** A unit of a layer to project; without one, the target class score is. @default undefined */
  unit?: Unit;
  /** Which class score, when no unit is given. @default "logit" */
  target?: ScoreKind;
}

/** What {@linkcode projectBack} returns. */
export interface Projection {
  /** The projection in input space, shaped like the batch (the caller's). */
  attribution: tf.Tensor4D;
  /** Where the unit was found in each image (unit projections only). */
  choices?: UnitChoice[];
}

/**
 * Projects a class score or one layer unit back to input space under a ReLU
 * backward rule: the gradient of the score, or of the unit's objective
 * ({@linkcode unitObjective}), with respect to the input.
 *
 * @param net The model.
 * @param x The batch.
 * @param target One class per image (used when no unit is given).
 * @param rule `plain`, `deconv` (Zeiler & Fergus) or `guided` (Springenberg et al.).
 * @param options The unit, or the score kind.
 * @param what The caller, for messages.
 * @returns The projection and the units found.
 */
export async function projectBack(
  net: Net,
  x: tf.Tensor4D,
  target: readonly number[],
  rule: ReluRule,
  options: ProjectionOptions = {},
  what = "projection",
): Promise<Projection> {
  if (!options.unit) {
    checkTarget(net, x, target, what);
    const { grad, value } = gradient(net, x, classObjective(target, options.target ?? "logit"), {
      rule,
    });
    value.dispose();
    return { attribution: grad as tf.Tensor4D };
  }
  checkBatch(net, x, what);
  const { mask, choices } = await unitMask(net, x, options.unit, what);
  try {
    const { grad, value } = gradient(net, x, unitObjective(options.unit.layer, mask), { rule });
    value.dispose();
    return { attribution: grad as tf.Tensor4D, choices };
  } finally {
    mask.dispose();
  }
}

/** A caption of the units found. */
export function describeUnits(choices: readonly UnitChoice[]): string[] {
  return choices.map((c) => c.row < 0 ? `ch ${c.channel}` : `ch ${c.channel} (${c.row},${c.col})`);
}

/** Parameters that choose a unit of a layer (shared by the projection plugins). */
export const UNIT_PARAMS = {
  mode: {
    type: "enum",
    choices: ["strongest", "neuron", "channel"],
    default: "strongest",
    help: "keep the strongest neuron of the channel, one neuron (row, col), or the whole channel",
  },
  channel: {
    type: "integer",
    default: -1,
    min: -1,
    help: "channel (unit of a dense layer); -1: the most active one in each image",
  },
  row: { type: "integer", default: 0, min: 0, help: "row of the neuron (mode neuron)" },
  col: { type: "integer", default: 0, min: 0, help: "column of the neuron (mode neuron)" },
} as const;
