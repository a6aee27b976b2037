/**
 * The `attribute` family: the gradient attribution methods on one contract
 * ({@linkcode Attribution}): saliency (Simonyan et al.), DeconvNet (Zeiler &
 * Fergus), guided backprop (Springenberg et al.), SmoothGrad (Smilkov et al.),
 * Grad-CAM and guided Grad-CAM (Selvaraju et al.), integrated gradients
 * (Sundararajan et al.); their evaluations (the pointing game, the deletion
 * metric, the model-randomization sanity check of Adebayo et al.); and Zeiler &
 * Fergus's occlusion maps.
 *
 * @example Saliency through the contract
 * ```ts ignore
 * import { attributionMap, predictedClasses, saliencyAttribution } from "./mod.ts";
 * const attr = await saliencyAttribution.attribute(net, x, await predictedClasses(net, x));
 * const map = attributionMap(attr); // [n, h, w]
 * ```
 *
 * @module
 */
export * from "./attribution.ts";
export * from "./batches.ts";
export * from "./targets.ts";
export * from "./unit_projection.ts";
export * from "./figures.ts";
export * from "./occlusion.ts";
export * from "./saliency.ts";
export * from "./deconvnet.ts";
export * from "./guided_backprop.ts";
export * from "./grad_cam.ts";
export * from "./guided_grad_cam.ts";
export * from "./smoothgrad.ts";
export * from "./integrated_gradients.ts";
export * from "./eval/evaluation.ts";
export * from "./eval/pointing_game.ts";
export * from "./eval/deletion.ts";
export * from "./eval/sanity_check.ts";

import type { AnyPlugin } from "../../core/plugin.ts";
import { saliency } from "./saliency.ts";
import { deconvnet } from "./deconvnet.ts";
import { guidedBackprop } from "./guided_backprop.ts";
import { gradCam } from "./grad_cam.ts";
import { guidedGradCam } from "./guided_grad_cam.ts";
import { smoothgrad } from "./smoothgrad.ts";
import { integratedGradients } from "./integrated_gradients.ts";
import { pointingGame } from "./eval/pointing_game.ts";
import { deletion } from "./eval/deletion.ts";
import { sanityCheck } from "./eval/sanity_check.ts";

/** The attribution plugins, in report order. */
export const attributionPlugins: AnyPlugin[] = [
  saliency,
  deconvnet,
  guidedBackprop,
  smoothgrad,
  gradCam,
  guidedGradCam,
  integratedGradients,
];

/** The evaluation plugins of the attribution methods. */
export const attributionEvaluations: AnyPlugin[] = [pointingGame, deletion, sanityCheck];
