/**
 * Learning curves of a training run: loss and accuracy per epoch, training and
 * validation, as two SVG plots (loss and accuracy have different scales). Training
 * is a solid line and validation a dashed one of the same colour, so a gap between
 * them (overfitting) reads at a glance.
 *
 * @example Plot a short history
 * ```ts
 * import { learningCurves } from "./learning_curves.ts";
 * const plots = learningCurves({ epoch: [1, 2, 3], loss: [0.9, 0.4, 0.3], valLoss: [1, 0.6, 0.5] });
 * if (!plots.loss.includes(">validation</text>") || plots.accuracy !== undefined) {
 *   throw new Error("a loss plot with a validation curve and no accuracy plot expected");
 * }
 * ```
 *
 * @module
 */
import { linePlot, PLOT_PALETTE, type PlotSeries } from "./plot.ts";

/** What a training run records per epoch (the shape `fit` returns). */
export interface LearningHistory {
  /** Epoch numbers. */
  epoch: readonly number[];
  /** Training loss per epoch. */
  loss: readonly number[];
  /** Validation loss per epoch. */
  valLoss?: readonly number[];
  /** Training accuracy per epoch, in [0, 1]. */
  accuracy?: readonly number[];
  /** Validation accuracy per epoch, in [0, 1]. */
  valAccuracy?: readonly number[];
}

/**
 * One epoch of a training run, as `fit` logs it (`EpochLog` of `core/train/fit.ts`
 * fits): a list of these is a history too.
 */
export interface EpochPoint {
  /** Epoch number. */
  epoch: number;
  /** Training loss. */
  loss: number;
  /** Training accuracy, in [0, 1]. */
  accuracy?: number;
  /** Validation loss. */
  valLoss?: number;
  /** Validation accuracy, in [0, 1]. */
  valAccuracy?: number;
}

/** Columns of a list of epochs; a column only when every epoch has a finite value. */
function columns(logs: readonly EpochPoint[]): LearningHistory {
  const column = (k: "accuracy" | "valLoss" | "valAccuracy") =>
    logs.length && logs.every((l) => Number.isFinite(l[k])) ? logs.map((l) => l[k]!) : undefined;
  const out: LearningHistory = { epoch: logs.map((l) => l.epoch), loss: logs.map((l) => l.loss) };
  const [accuracy, valLoss, valAccuracy] = [
    column("accuracy"),
    column("valLoss"),
    column("valAccuracy"),
  ];
  return {
    ...out,
    ...(accuracy ? { accuracy } : {}),
    ...(valLoss ? { valLoss } : {}),
    ...(valAccuracy ? { valAccuracy } : {}),
  };
}

/** The plots of {@link learningCurves}. */
export interface LearningCurvePlots {
  /** Loss against epoch (SVG). */
  loss: string;
  /** Accuracy against epoch (SVG), when the history has accuracy. */
  accuracy?: string;
}

function pair(
  epoch: readonly number[],
  train: readonly number[],
  val: readonly number[] | undefined,
  color: string,
): PlotSeries[] {
  const out: PlotSeries[] = [{ name: "training", x: epoch, y: train, color }];
  if (val) out.push({ name: "validation", x: epoch, y: val, color, dashed: true });
  return out;
}

/**
 * Draws a training history as a loss plot and, when it has accuracy, an accuracy plot.
 *
 * @param history Per-epoch values, every array as long as `epoch`; or the list of
 *   epochs `fit` returns as `history` (a value missing from some epoch drops that curve).
 * @param title Words put before each plot's title (e.g. the model's name).
 * @returns The SVG plots.
 * @throws {RangeError} When an array's length differs from `epoch`'s.
 */
export function learningCurves(
  history: LearningHistory | readonly EpochPoint[],
  title = "",
): LearningCurvePlots {
  const { epoch, loss, valLoss, accuracy, valAccuracy } = Array.isArray(history)
    ? columns(history as readonly EpochPoint[])
    : history as LearningHistory;
  for (const [k, v] of Object.entries({ loss, valLoss, accuracy, valAccuracy })) {
    if (v !== undefined && v.length !== epoch.length) {
      throw new RangeError(
        `learningCurves: ${k} has ${v.length} values for ${epoch.length} epochs; give one per epoch.`,
      );
    }
  }
  const prefix = title ? `${title}: ` : "";
  const plots: LearningCurvePlots = {
    loss: linePlot(pair(epoch, loss, valLoss, PLOT_PALETTE[0]), {
      xLabel: "epoch",
      yLabel: "loss",
      title: `${prefix}loss`,
      legend: true,
    }),
  };
  if (accuracy || valAccuracy) {
    const acc = pair(epoch, accuracy ?? epoch.map(() => NaN), valAccuracy, PLOT_PALETTE[1]);
    plots.accuracy = linePlot(accuracy ? acc : acc.slice(1), {
      xLabel: "epoch",
      yLabel: "accuracy",
      title: `${prefix}accuracy`,
      legend: true,
    });
  }
  return plots;
}
