/**
 * The inspect family: what a layer responds to, what its weights look like, and
 * which patches of a data set excite each channel most.
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { activations } from "./activations.ts";
import { filters } from "./filters.ts";
import { topPatches } from "./top_patches.ts";

export * from "./activations.ts";
export * from "./filters.ts";
export * from "./top_patches.ts";

/** The inspect plugins. */
export const inspectPlugins: AnyPlugin[] = [activations, filters, topPatches];
