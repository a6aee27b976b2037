/**
 * The design family ("the power of small filters"): builders of 3x3 stacks, 1x1
 * bottlenecks and 1xN + Nx1 factorizations; per-layer parameters, multiply-adds,
 * FLOPs, latency, receptive fields and effective receptive fields of any model;
 * the lecture's comparison table computed from built layers; real-size
 * reference architectures; and the experiment that trains the variants.
 *
 * @example Three 3x3 convs against one 7x7 at 56x56x64
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { largeConv, measureBlock, stacked3x3 } from "./mod.ts";
 * await tf.setBackend("cpu");
 * const big = measureBlock("7x7", largeConv(7, { filters: 64 }), [56, 56, 64]);
 * const small = measureBlock("3x3 x3", stacked3x3(3, { filters: 64 }), [56, 56, 64]);
 * if (big.weights !== 49 * 64 * 64 || small.weights !== 27 * 64 * 64) throw new Error("weights");
 * if (big.receptiveField !== 7 || small.receptiveField !== 7) throw new Error("receptive field");
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { summary } from "./summary.ts";
import { stackCompare } from "./stack_compare.ts";
import { stackExperiment } from "./stack_experiment.ts";

export * from "./summary.ts";
export * from "./costs.ts";
export * from "./latency.ts";
export * from "./effective_rf.ts";
export * from "./conv_stacks.ts";
export * from "./stack_compare.ts";
export * from "./stack_experiment.ts";
export * from "./architectures.ts";

/** The design plugins. */
export const designPlugins: AnyPlugin[] = [summary, stackCompare, stackExperiment];
