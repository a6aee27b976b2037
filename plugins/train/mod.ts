/**
 * The train family (Part 2 of the lecture): augmentation, noise at training
 * marginalized at test, transfer learning, and classification + localization.
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { augmentPlugins } from "./augment/mod.ts";
import { marginalizePlugins } from "./marginalize/mod.ts";
import { transferPlugins } from "./transfer/mod.ts";
import { localizePlugins } from "./localize/mod.ts";

export * from "./augment/mod.ts";
export * from "./marginalize/mod.ts";
export * from "./transfer/mod.ts";
export * from "./localize/mod.ts";

/** The train plugins, in report order. */
export const trainPlugins: AnyPlugin[] = [
  ...augmentPlugins,
  ...marginalizePlugins,
  ...transferPlugins,
  ...localizePlugins,
];
