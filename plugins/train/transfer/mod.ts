/**
 * Transfer learning: features from any layer as a data source, linear probes per layer, fine-tuning, the lecture's similar/different x little/much data table and its advisor.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";

/** The transfer plugins of the train family. */
export const transferPlugins: AnyPlugin[] = [];
