/**
 * Training: {@linkcode fit} with its optimizers, learning-rate schedules,
 * metrics, checkpoints and the shift-and-flip augmentation of the built-in
 * models.
 *
 * @example The learning rate of a cosine schedule half way
 * ```ts
 * import { learningRateAt } from "./mod.ts";
 * const lr = learningRateAt({ kind: "cosine", learningRate: 0.1 }, 50, 101, 10);
 * if (Math.abs(lr - 0.05) > 1e-9) throw new Error(`${lr}`);
 * ```
 *
 * @module
 */
export * from "./fit.ts";
export * from "./optimizers.ts";
export * from "./schedule.ts";
export * from "./metrics.ts";
export * from "./checkpoint.ts";
export * from "./shift_flip.ts";
export * from "../progress.ts";
