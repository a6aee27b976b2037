/**
 * Data augmentation ("change the pixels without changing the label"): a seeded, replayable pipeline of batched transforms, boxes that travel with them, and the plugins that draw and measure it.
 *
 * @example Augment a batch for fit
 * ```ts
 * import { augmentPipeline, horizontalFlip, randomAffine } from "./mod.ts";
 * const augment = augmentPipeline([horizontalFlip(), randomAffine({ rotate: 10, translate: 0.1 })]).asAugment();
 * if (typeof augment !== "function") throw new Error();
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import { augment } from "./augment_grid.ts";
import { augmentEffect } from "./augment_effect.ts";
import { augmentAudit } from "./augment_audit.ts";

export * from "./transform.ts";
export * from "./warp.ts";
export * from "./pipeline.ts";
export * from "./flip.ts";
export * from "./crop.ts";
export * from "./affine.ts";
export * from "./lens_distortion.ts";
export * from "./color_jitter.ts";
export * from "./eigen.ts";
export * from "./fancy_pca.ts";
export * from "./erasing.ts";
export * from "./mixing.ts";
export * from "./boxes.ts";
export * from "./procedural_rgb.ts";
export * from "./standard.ts";
export * from "./augment_grid.ts";
export * from "./augment_effect.ts";
export * from "./augment_audit.ts";

/** The augment plugins of the train family. */
export const augmentPlugins: AnyPlugin[] = [augment, augmentEffect, augmentAudit];
