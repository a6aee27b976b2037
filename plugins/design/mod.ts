/**
 * The design family: per-layer receptive fields, parameters and multiply-adds.
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { summary } from "./summary.ts";

export * from "./summary.ts";

/** The design plugins. */
export const designPlugins: AnyPlugin[] = [summary];
