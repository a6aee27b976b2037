/**
 * convlens: see inside ConvNets, and train and design them, on TensorFlow.js.
 *
 * Open a model (the built-in MNIST model, or your own LayersModel or GraphModel
 * from a folder or URL), run techniques as plugins, write their images, figures
 * and an HTML report; define your own plugins with {@linkcode definePlugin}.
 *
 * On a CPU it runs TensorFlow.js's WASM backend; with `--allow-ffi` and oneDNN 2.x
 * installed (Debian/Ubuntu: `apt install libdnnl2`) convolutions, their gradients
 * and matrix products run natively on every core ({@linkcode nativeStatus} says
 * whether they do).
 *
 * @example Run built-in plugins and write a report
 * ```ts ignore
 * import { Lens } from "@convlens/convlens";
 * const lens = await Lens.open({ model: "mnist" });
 * const summary = await lens.run("summary");
 * const acts = await lens.run("activations", { layer: "conv2" });
 * await lens.report("out/report.html", [summary, acts]);
 * summary.dispose();
 * acts.dispose();
 * lens.dispose();
 * ```
 *
 * @module
 */
export { BUILTIN_MODELS, Lens, type LensOptions } from "./lens.ts";
export * from "./core/plugin.ts";
export * from "./core/runner.ts";
export * from "./core/params.ts";
export * from "./core/result.ts";
export * from "./core/net.ts";
export * from "./core/load.ts";
export * from "./core/gradients.ts";
export * from "./core/objective.ts";
export * from "./core/receptive_field.ts";
export * from "./core/random.ts";
export * from "./core/inputs.ts";
export * from "./core/memory_budget.ts";
export * from "./backends/mod.ts";
export * from "./core/images/codecs.ts";
export * from "./core/images/display.ts";
export * from "./core/images/colormaps.ts";
export * from "./core/images/grids.ts";
export * from "./core/plots/mod.ts";
export * from "./core/data/mod.ts";
export {
  type Augment,
  type EarlyStopping,
  type EpochLog,
  evaluate,
  type EvaluateOptions,
  type Evaluation,
  fit,
  type FitOptions,
  type FitResult,
  learningRateAt,
  makeOptimizer,
  type OptimizerName,
  type OptimizerOptions,
  type OptimizerState,
  type Schedule,
  type ScheduleKind,
  shiftFlip,
  type ShiftFlipOptions,
} from "./core/train/mod.ts";
export {
  BUILTIN_NAMES,
  BUILTIN_RECIPES,
  type BuiltinModel,
  builtinModel,
  type BuiltinName,
} from "./core/builtin/mod.ts";
export { renderReport, type ReportOptions, writeReport } from "./core/report.ts";
export * from "./plugins/mod.ts";
// tf is exported from "./tf" (see deno.json) so that its own docs stay out of this module's lint.
