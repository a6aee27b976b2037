/**
 * The built-in plugins, by family.
 *
 * @module
 */
import type { AnyPlugin } from "../core/plugin.ts";
import { designPlugins } from "./design/mod.ts";
import { inspectPlugins } from "./inspect/mod.ts";
import { occlusion } from "./attribute/occlusion.ts";
import { attributionEvaluations, attributionPlugins } from "./attribute/mod.ts";
import { optimizePlugins } from "./optimize/mod.ts";
import { foolPlugins } from "./fool/mod.ts";
import { trainPlugins } from "./train/mod.ts";

export * from "./design/mod.ts";
export * from "./inspect/mod.ts";
export * from "./attribute/occlusion.ts";
export * from "./attribute/mod.ts";
export {
  classModel,
  type ClassModelOptions,
  deepDream,
  type DeepDreamOptions,
  invert,
  type InvertOptions,
  optimizePlugins,
  visualize,
  type VisualizeOptions,
} from "./optimize/mod.ts";
export * from "./fool/mod.ts";
export * from "./train/mod.ts";

/** Every built-in plugin, in report order. */
export const builtinPlugins: AnyPlugin[] = [
  ...designPlugins,
  ...inspectPlugins,
  occlusion,
  ...attributionPlugins,
  ...attributionEvaluations,
  ...optimizePlugins,
  ...foolPlugins,
  ...trainPlugins,
];
