/**
 * The effective receptive field (Luo, Li, Urtasun & Zemel, "Understanding the
 * Effective Receptive Field in Deep Convolutional Neural Networks", NIPS 2016):
 * how much each input pixel moves the centre unit of a layer, measured as the
 * gradient of that unit (summed over its channels) with respect to the input,
 * averaged in magnitude over several inputs. Its mass sits in a roughly Gaussian
 * blob much smaller than the theoretical receptive field, and the ratio shrinks
 * with depth; this module measures the blob beside the theoretical size.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { gradient } from "../../core/gradients.ts";
import type { Objective } from "../../core/objective.ts";
import { receptiveFields } from "../../core/receptive_field.ts";

/** Options of {@linkcode effectiveReceptiveField}. */
export interface EffectiveRfOptions {
  /** Share of the gradient's total magnitude the reported square holds. @default 0.95 */
  mass?: number;
}

/** One layer's effective receptive field. */
export interface EffectiveRf {
  /** The layer. */
  layer: string;
  /** Side (input pixels) of the smallest square centred on the unit that holds `mass` of |gradient|. */
  size: number;
  /** The theoretical receptive field's side (the larger of height and width). */
  theoretical: number;
  /** Root-mean-square distance (input pixels) of |gradient| from the unit's centre, per axis. */
  spread: number;
  /** Input coordinates `[y, x]` of the centre unit's receptive-field centre. */
  center: [number, number];
  /** `[h, w]` mean |gradient| over the inputs and channels, scaled to a maximum of 1. */
  map: tf.Tensor2D;
}

/**
 * Spatial layers whose units have a receptive field smaller than the whole image:
 * the candidates for an effective-receptive-field measurement.
 *
 * @param net The model.
 * @returns Their names, input side first.
 */
export function spatialLayers(net: Net): string[] {
  const rfs = receptiveFields(net);
  return net.layers.filter((l) =>
    l.outputShape.length === 3 && !rfs.get(l.name)?.global &&
    (l.role === "conv" || l.role === "depthwise" || l.role === "pool" || l.role === "merge")
  ).map((l) => l.name);
}

/**
 * Up to `count` spatial layers spread evenly over the depth, the deepest one included.
 *
 * @param net The model.
 * @param count How many.
 * @returns Their names.
 */
export function spreadLayers(net: Net, count: number): string[] {
  const all = spatialLayers(net);
  if (all.length <= count) return all;
  const picked = new Set<string>();
  for (let i = 1; i <= count; i++) picked.add(all[Math.round((i * all.length) / count) - 1]);
  return [...picked];
}

/**
 * Measures a layer's effective receptive field on a batch of inputs.
 *
 * @param net The model.
 * @param layer A spatial layer.
 * @param x Inputs in model space `[n, h, w, c]` (Luo et al. use random ones).
 * @param options Mass of the reported square.
 * @returns The measurement; the caller disposes of `map`.
 * @throws {RangeError} for a layer without a spatial output or a mass outside (0, 1).
 */
export async function effectiveReceptiveField(
  net: Net,
  layer: string,
  x: tf.Tensor4D,
  options: EffectiveRfOptions = {},
): Promise<EffectiveRf> {
  const mass = options.mass ?? 0.95;
  if (!(mass > 0 && mass < 1)) {
    throw new RangeError(`mass must be between 0 and 1 (e.g. 0.95), got ${mass}`);
  }
  const info = net.layer(layer);
  const rf = receptiveFields(net).get(info.name)!;
  if (info.outputShape.length !== 3 || rf.global) {
    throw new RangeError(
      `Layer "${layer}" has no spatial output (${
        JSON.stringify(info.outputShape)
      }): pick a conv, pool or merge layer (${spatialLayers(net).slice(-3).join(", ")})`,
    );
  }
  const [oh, ow] = info.outputShape;
  const uy = Math.floor(oh / 2), ux = Math.floor(ow / 2);
  const center: [number, number] = [
    rf.start[0] + rf.jump[0] * uy,
    rf.start[1] + rf.jump[1] * ux,
  ];
  const objective: Objective = {
    name: `centre(${layer})`,
    taps: [info.name],
    perImage: ({ result }) =>
      result.taps[info.name].slice([0, uy, ux, 0], [-1, 1, 1, -1]).sum([1, 2, 3]) as tf.Tensor1D,
  };
  const { grad, value } = gradient(net, x, objective);
  const map = tf.tidy(() => {
    const m = grad.abs().mean([0, 3]) as tf.Tensor2D;
    const top = m.max();
    return tf.where(top.greater(0), m.div(top), m) as tf.Tensor2D;
  });
  tf.dispose([grad, value]);
  const [h, w] = map.shape;
  const g = await map.data();
  // One [h, w] map per layer: a plain pass over it is cheaper than building
  // distance tensors, and it is not per image.
  const byRing = new Float64Array(Math.max(h, w) + 1);
  let total = 0, second = 0;
  const cy = Math.round(center[0]), cx = Math.round(center[1]);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const v = g[i * w + j];
      byRing[Math.max(Math.abs(i - cy), Math.abs(j - cx))] += v;
      total += v;
      second += v * ((i - center[0]) ** 2 + (j - center[1]) ** 2);
    }
  }
  let size = 0;
  if (total > 0) {
    let acc = 0;
    for (let d = 0; d < byRing.length; d++) {
      acc += byRing[d];
      if (acc >= mass * total - 1e-9 * total) {
        size = 2 * d + 1;
        break;
      }
    }
  }
  return {
    layer: info.name,
    size,
    theoretical: Math.max(rf.size[0], rf.size[1]),
    spread: total > 0 ? Math.sqrt(second / total / 2) : 0,
    center,
    map,
  };
}
