/**
 * The fool family: adversarial examples (FGSM and PGD after Goodfellow et al. and
 * Madry et al., Szegedy et al.'s smallest targeted perturbation), fooling images
 * from noise by gradient ascent and by evolution (Nguyen et al.), and the
 * shallow-model case (Goodfellow et al.: a linear classifier is fooled as easily).
 *
 * @example FGSM on a small classifier, in pixel units
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { Net } from "../../core/net.ts";
 * import { attack, evaluateAttack } from "./mod.ts";
 * await tf.setBackend("cpu");
 * const model = tf.sequential({ layers: [
 *   tf.layers.flatten({ inputShape: [4, 4, 1], name: "f" }),
 *   tf.layers.dense({ units: 3, activation: "softmax", name: "d" }),
 * ] });
 * const net = Net.fromModel(model);
 * const pixels = tf.fill([2, 4, 4, 1], 0.5) as tf.Tensor4D;
 * const adv = await attack(net, pixels, [0, 1], { method: "fgsm", epsilon: 0.1 });
 * const records = await evaluateAttack(net, pixels, adv, [0, 1]);
 * if (records.some((r) => r.linf > 0.1 + 1e-6)) throw new Error("outside the ball");
 * tf.dispose([pixels, adv]);
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { adversarial } from "./adversarial.ts";
import { foolingImages } from "./fooling_images.ts";
import { shallowFooling } from "./shallow_fooling.ts";

export * from "./attack_options.ts";
export * from "./fgsm_pgd.ts";
export * from "./szegedy.ts";
export * from "./adversarial.ts";
export * from "./fooling_images.ts";
export * from "./shallow_fooling.ts";

/** The fool plugins, in report order. */
export const foolPlugins: AnyPlugin[] = [adversarial, foolingImages, shallowFooling];
