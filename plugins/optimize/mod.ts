/**
 * The optimize family: one optimization loop with composable parts (objectives,
 * parameterizations, transforms, step priors, optimizers) and the plugins built
 * on it: class models (Simonyan et al.), regularized class and unit
 * visualization (Yosinski et al.), DeepDream with octaves, and feature inversion
 * with multiple reconstructions (Mahendran & Vedaldi).
 *
 * @example Raise a channel of a small net, with jitter and a Fourier image
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { Net } from "../../core/net.ts";
 * import { seededRandom } from "../../core/random.ts";
 * import { channel } from "./objectives.ts";
 * import { fourier } from "./param.ts";
 * import { jitter } from "./transforms.ts";
 * import { noiseImages, render } from "./loop.ts";
 * await tf.setBackend("cpu");
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, name: "c1" }),
 *   tf.layers.flatten({ name: "f" }),
 *   tf.layers.dense({ units: 3, activation: "softmax", name: "d" }),
 * ] });
 * const net = Net.fromModel(model);
 * const param = fourier(8, 8, 3, net.inputBounds());
 * const init = noiseImages(net, 1, seededRandom(0));
 * const r = await render(net, {
 *   objective: channel("c1", 1), init, steps: 5, param, transforms: [jitter(1)],
 * });
 * if (r.images.shape[3] !== 3) throw new Error("shape");
 * tf.dispose([init, r.images]);
 * param.dispose();
 * ```
 *
 * @module
 */
import type { AnyPlugin } from "../../core/plugin.ts";
import { classModel } from "./class_model.ts";
import { visualize } from "./visualize.ts";
import { deepDream } from "./deep_dream.ts";
import { invert } from "./invert.ts";

export * from "./objectives.ts";
export * from "./param.ts";
export * from "./transforms.ts";
export * from "./priors.ts";
export * from "./loop.ts";
export * from "./class_model.ts";
export * from "./visualize.ts";
export * from "./deep_dream.ts";
export * from "./invert.ts";

/** The optimize family's plugins, in report order. */
export const optimizePlugins: AnyPlugin[] = [classModel, visualize, deepDream, invert];
