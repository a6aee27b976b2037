/**
 * The standard pipeline the augment plugins draw and measure: what the lecture
 * lists for small images, at strengths that keep a label (a shirt mirrored,
 * shifted by a tenth, turned by ten degrees, a little brighter, with a patch
 * erased is still a shirt). Colour images add saturation and hue, and fancy
 * PCA when the data's colour statistics are given.
 *
 * @example For Fashion-MNIST
 * ```ts
 * import { standardPipeline } from "./standard.ts";
 * const p = standardPipeline({ channels: 1 });
 * if (p.transforms.length !== 5) throw new Error();
 * ```
 *
 * @module
 */
import { type AugmentPipeline, augmentPipeline } from "./pipeline.ts";
import { horizontalFlip } from "./flip.ts";
import { randomAffine } from "./affine.ts";
import { lensDistortion } from "./lens_distortion.ts";
import { colorJitter } from "./color_jitter.ts";
import { randomErasing } from "./erasing.ts";
import { type ColorPca, fancyPca } from "./fancy_pca.ts";
import type { Transform } from "./transform.ts";

/** Options of {@linkcode standardPipeline}. */
export interface StandardPipelineOptions {
  /** Channels of the images (1 or 3). */
  channels: number;
  /** The training set's colour statistics, for fancy PCA (colour images only). @default none */
  pca?: ColorPca;
}

/**
 * Flip, one affine warp (shift 10%, rotation 10 degrees, zoom 0.9-1.1, shear
 * 5 degrees), a mild lens distortion, colour jitter and random erasing.
 *
 * @param options Channels and the colour statistics.
 * @returns The pipeline.
 */
export function standardPipeline(options: StandardPipelineOptions): AugmentPipeline {
  const colour = options.channels === 3;
  const steps: Transform[] = [
    horizontalFlip(),
    randomAffine({ translate: 0.1, rotate: 10, zoom: [0.9, 1.1], shear: 5 }),
    lensDistortion({ k1: [-0.1, 0.1], k2: [0, 0], p: 0.5 }),
    colorJitter({
      brightness: 0.2,
      contrast: 0.2,
      ...(colour ? { saturation: 0.2, hue: 0.02 } : {}),
    }),
    ...(colour && options.pca ? [fancyPca(options.pca)] : []),
    randomErasing({ p: 0.5, area: [0.02, 0.15] }),
  ];
  return augmentPipeline(steps as Transform[]);
}
