/**
 * Transfer learning: features from any layer as a data source, linear probes
 * per layer, fine-tuning, the lecture's similar/different x little/much data
 * table and its advisor.
 *
 * @example Probe the built-in fashion model's layers
 * ```ts ignore
 * import { Lens } from "../../../lens.ts";
 * import { probeLayers } from "./mod.ts";
 * const lens = await Lens.open({ model: "fashion" });
 * const result = await lens.run(probeLayers, { perClass: 50, valCount: 500 });
 * console.log(result.figures.bestLayer);
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import { probeLayers } from "./probe_layers.ts";
import { transferTable } from "./transfer_table.ts";

export * from "./features.ts";
export * from "./probes.ts";
export * from "./fine_tune.ts";
export * from "./splits.ts";
export * from "./probe_layers.ts";
export * from "./advisor.ts";
export * from "./transfer_table.ts";

/** The transfer plugins of the train family. */
export const transferPlugins: AnyPlugin[] = [probeLayers, transferTable];
