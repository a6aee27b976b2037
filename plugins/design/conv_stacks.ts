/**
 * Builders of the lecture's conv stacks ("the power of small filters") as plain
 * tfjs layers, usable in any Sequential or functional model and serialized like
 * any other layer: n stacked 3x3 convs against one (2n+1)x(2n+1) conv, the 1x1
 * bottleneck (reduce, 3x3, restore: Network in Network, GoogLeNet, ResNet), and
 * the 1xN + Nx1 factorization (Szegedy et al., "Rethinking the Inception
 * Architecture"). Every conv keeps the spatial size (`same` padding, stride 1)
 * and has its own nonlinearity, so a block maps HxWxC to HxWxC.
 *
 * @example Three 3x3 convs see 7x7, like one 7x7 conv, with 27C^2 weights instead of 49C^2
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { largeConv, stacked3x3 } from "./conv_stacks.ts";
 * const c = 8;
 * const kernels = (layers: tf.layers.Layer[]) => {
 *   const m = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [9, 9, c] }), ...layers] });
 *   const n = m.layers.reduce((s, l) => s + l.getWeights()[0].size, 0);
 *   m.dispose();
 *   return n;
 * };
 * if (kernels(largeConv(7, { filters: c })) !== 49 * c * c) throw new Error("7x7");
 * if (kernels(stacked3x3(3, { filters: c })) !== 27 * c * c) throw new Error("3x3 stack");
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";

/** Options shared by the stack builders. */
export interface ConvStackOptions {
  /** Output channels of the block (C). */
  filters: number;
  /** The nonlinearity after each conv. @default "relu" */
  activation?: "relu" | "relu6" | "elu" | "selu" | "tanh" | "sigmoid" | "linear";
  /** Prefix of the layers' names (`<name>_conv1`, ...); tfjs names them when not given. @default undefined */
  name?: string;
  /** Seed of the kernels' He-normal initializer; unseeded when not given. @default undefined */
  seed?: number;
  /** Biases in the convs. @default true */
  useBias?: boolean;
}

/** Options of {@linkcode bottleneck}. */
export interface BottleneckOptions extends ConvStackOptions {
  /** Channels of the reduced 3x3 conv. @default filters / 2 (the lecture's C/2) */
  reduced?: number;
  /** 3x3 convs at the reduced width (3 give a 7x7 receptive field). @default 1 */
  convs?: number;
}

function check(o: ConvStackOptions, what: string): void {
  if (!Number.isInteger(o.filters) || o.filters < 1) {
    throw new RangeError(`${what}: filters must be a positive whole number, got ${o.filters}`);
  }
}

function conv(
  o: ConvStackOptions,
  index: number,
  kernelSize: number | [number, number],
  filters = o.filters,
): tf.layers.Layer {
  return tf.layers.conv2d({
    name: o.name ? `${o.name}_conv${index}` : undefined,
    filters,
    kernelSize,
    padding: "same",
    activation: o.activation ?? "relu",
    useBias: o.useBias ?? true,
    kernelInitializer: tf.initializers.heNormal({
      seed: o.seed === undefined ? undefined : o.seed * 101 + index,
    }),
  });
}

/**
 * One k x k conv (the large filter the lecture replaces).
 *
 * @param k Kernel size (odd, e.g. 7).
 * @param options Channels, activation, names, seed.
 * @returns Its one layer.
 * @throws {RangeError} for a kernel size that is not a positive odd number.
 */
export function largeConv(k: number, options: ConvStackOptions): tf.layers.Layer[] {
  check(options, "largeConv");
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0) {
    throw new RangeError(`largeConv: kernel size must be a positive odd number, got ${k}`);
  }
  return [conv(options, 1, k)];
}

/**
 * n stacked 3x3 convs: receptive field 2n + 1, n nonlinearities, 9nC^2 weights.
 *
 * @param n How many 3x3 convs.
 * @param options Channels, activation, names, seed.
 * @returns The n layers, in order.
 * @throws {RangeError} for n outside 1..32.
 */
export function stacked3x3(n: number, options: ConvStackOptions): tf.layers.Layer[] {
  check(options, "stacked3x3");
  if (!Number.isInteger(n) || n < 1 || n > 32) {
    throw new RangeError(`stacked3x3: n must be a whole number from 1 to 32, got ${n}`);
  }
  return Array.from({ length: n }, (_, i) => conv(options, i + 1, 3));
}

/**
 * The 1x1 bottleneck: a 1x1 conv to `reduced` channels, a 3x3 conv (or several)
 * at the reduced width, a 1x1 conv back to C. With C/2 and one 3x3 it has 3.25C^2
 * weights against a 3x3 conv's 9C^2, and three nonlinearities against one.
 *
 * @param options Channels, reduced channels, activation, names, seed.
 * @returns The layers, in order (three for one 3x3).
 * @throws {RangeError} for reduced channels that are not a positive whole number.
 */
export function bottleneck(options: BottleneckOptions): tf.layers.Layer[] {
  check(options, "bottleneck");
  const reduced = options.reduced ?? Math.max(1, Math.floor(options.filters / 2));
  if (!Number.isInteger(reduced) || reduced < 1) {
    throw new RangeError(`bottleneck: reduced must be a positive whole number, got ${reduced}`);
  }
  const convs = options.convs ?? 1;
  if (!Number.isInteger(convs) || convs < 1 || convs > 32) {
    throw new RangeError(`bottleneck: convs must be a whole number from 1 to 32, got ${convs}`);
  }
  return [
    conv(options, 1, 1, reduced),
    ...Array.from({ length: convs }, (_, i) => conv(options, i + 2, 3, reduced)),
    conv(options, convs + 2, 1),
  ];
}

/**
 * The 1xN + Nx1 factorization of an NxN conv: receptive field N, two
 * nonlinearities, 2NC^2 weights against N^2 C^2.
 *
 * @param n N (e.g. 3 or 7).
 * @param options Channels, activation, names, seed.
 * @returns The two layers (1xN first).
 * @throws {RangeError} for N that is not a positive odd number.
 */
export function factorized(n: number, options: ConvStackOptions): tf.layers.Layer[] {
  check(options, "factorized");
  if (!Number.isInteger(n) || n < 1 || n % 2 === 0) {
    throw new RangeError(`factorized: N must be a positive odd number, got ${n}`);
  }
  return [conv(options, 1, [1, n]), conv(options, 2, [n, 1])];
}

/**
 * Applies layers in order to a symbolic tensor (a block in a functional model).
 *
 * @param layers The block's layers.
 * @param x Its input.
 * @returns Its output.
 */
export function applyLayers(
  layers: readonly tf.layers.Layer[],
  x: tf.SymbolicTensor,
): tf.SymbolicTensor {
  return layers.reduce((y, l) => l.apply(y) as tf.SymbolicTensor, x);
}
