/**
 * Data augmentation ("change the pixels without changing the label"): a seeded, replayable pipeline of batched transforms, boxes that travel with them, and the plugins that draw and measure it.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";

/** The augment plugins of the train family. */
export const augmentPlugins: AnyPlugin[] = [];
