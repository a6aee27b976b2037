/**
 * Learning-rate schedules: the rate for each step of a training run, as a
 * function of the step and of the run's length. Step decay (AlexNet, ResNet:
 * divide by 10 at fixed epochs), cosine annealing (Loshchilov and Hutter
 * 2017) and a linear warmup before either (Goyal et al. 2017).
 *
 * @example Warmup then cosine
 * ```ts
 * import { learningRateAt } from "./schedule.ts";
 * const s = { kind: "cosine", learningRate: 0.1, warmupSteps: 10 } as const;
 * const at = (step: number) => learningRateAt(s, step, 100, 10);
 * if (!(at(0) < at(9) && at(9) === 0.1 && at(99) < 0.001)) throw new Error();
 * ```
 *
 * @module
 */

/** Which schedule. */
export type ScheduleKind = "constant" | "step" | "cosine";

/** The schedules' names, for schemas and messages. */
export const SCHEDULES: readonly ScheduleKind[] = ["constant", "step", "cosine"];

/** A learning-rate schedule. */
export interface Schedule {
  /** Its shape. @default "constant" */
  kind?: ScheduleKind;
  /** The peak rate (reached after the warmup). */
  learningRate: number;
  /** Steps of linear warmup from `learningRate / warmupSteps`. @default 0 */
  warmupSteps?: number;
  /** `step`: epochs (fractions allowed) at which the rate is multiplied by `gamma`. @default [] */
  milestones?: readonly number[];
  /** `step`: the factor at each milestone. @default 0.1 */
  gamma?: number;
  /** `cosine`: the rate at the last step, as a fraction of the peak. @default 0 */
  finalFraction?: number;
}

/**
 * The learning rate at one step.
 *
 * @param s The schedule.
 * @param step Step of the run, from 0.
 * @param totalSteps Steps of the whole run.
 * @param stepsPerEpoch Steps in one epoch (for milestones given in epochs).
 * @returns The rate.
 * @throws {RangeError} for a rate that is not positive or an unknown kind.
 */
export function learningRateAt(
  s: Schedule,
  step: number,
  totalSteps: number,
  stepsPerEpoch: number,
): number {
  const lr = s.learningRate;
  if (!(lr > 0)) throw new RangeError(`learning rate ${lr} is invalid: give a positive number`);
  const warm = s.warmupSteps ?? 0;
  if (step < warm) return lr * (step + 1) / warm;
  const kind = s.kind ?? "constant";
  if (kind === "constant") return lr;
  if (kind === "step") {
    // Milestones may fall inside an epoch (1.5: half way through the second).
    const epoch = step / Math.max(1, stepsPerEpoch);
    const passed = (s.milestones ?? []).filter((m) => epoch >= m).length;
    return lr * (s.gamma ?? 0.1) ** passed;
  }
  if (kind === "cosine") {
    const span = Math.max(1, totalSteps - warm - 1);
    const t = Math.min(1, (step - warm) / span);
    const low = lr * (s.finalFraction ?? 0);
    return low + (lr - low) * 0.5 * (1 + Math.cos(Math.PI * t));
  }
  throw new RangeError(`schedule "${kind}" is unknown; give one of ${SCHEDULES.join(", ")}`);
}
