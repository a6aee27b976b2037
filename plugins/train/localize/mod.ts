/**
 * Classification + localization: a box regression head attached at any layer,
 * IoU and GIoU, and boxes taken from attributions.
 *
 * @example IoU of a box with itself
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { boxesToCorners, iou } from "./mod.ts";
 * const a = boxesToCorners([{ y0: 2, x0: 3, y1: 10, x1: 9 }]);
 * const v = iou(a, a);
 * if (Math.abs(v.dataSync()[0] - 1) > 1e-6) throw new Error("iou");
 * tf.dispose([a, v]);
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import { localize } from "./localize.ts";

export * from "./iou.ts";
export * from "./box_loss.ts";
export * from "./box_from_map.ts";
export * from "./box_head.ts";
export * from "./localize.ts";

/** The localize plugins of the train family. */
export const localizePlugins: AnyPlugin[] = [localize];
