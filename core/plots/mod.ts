/**
 * SVG figures for reports: line, scatter and bar plots, learning curves and the
 * colour bars of heatmaps.
 *
 * @example A plot and a colour bar
 * ```ts
 * import { colorbarSvg, linePlot } from "./mod.ts";
 * const plot = linePlot([{ name: "kept", x: [0, 0.5, 1], y: [0.9, 0.4, 0.1] }], {
 *   xLabel: "fraction of pixels deleted",
 *   yLabel: "probability",
 * });
 * const bar = colorbarSvg({ colormap: "viridis", min: 0, max: 1 });
 * if (!plot.includes("<svg") || !bar.includes("<svg")) throw new Error("no SVG");
 * ```
 *
 * @module
 */
export * from "./plot.ts";
export * from "./colorbar.ts";
export * from "./learning_curves.ts";
