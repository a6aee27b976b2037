/**
 * Classification + localization: a box regression head attached at any layer, IoU, and boxes taken from attributions.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";

/** The localize plugins of the train family. */
export const localizePlugins: AnyPlugin[] = [];
