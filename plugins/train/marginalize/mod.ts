/**
 * "Training: add random noise; testing: marginalize over the noise": test-time crops, DropConnect, MC-dropout and ensembles, with the plugins that measure them.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import { tta } from "./test_time_crops.ts";
import { mcDropout } from "./mc_dropout.ts";
import { ensemble } from "./ensemble.ts";

export * from "./test_time_crops.ts";
export * from "./drop_connect.ts";
export * from "./mc_dropout.ts";
export * from "./ensemble.ts";
export * from "../../../core/ensemble.ts";

/** The marginalize plugins of the train family. */
export const marginalizePlugins: AnyPlugin[] = [tta, mcDropout, ensemble];
