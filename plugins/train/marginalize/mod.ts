/**
 * "Training: add random noise; testing: marginalize over the noise": test-time crops, DropConnect, MC-dropout and ensembles, with the plugins that measure them.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import { tta } from "./test_time_crops.ts";

export * from "./test_time_crops.ts";

/** The marginalize plugins of the train family. */
export const marginalizePlugins: AnyPlugin[] = [tta];
