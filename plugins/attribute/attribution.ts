/**
 * The attribution contract that every method of the `attribute` family implements
 * (as Captum's `attribute(inputs, target, ...)`): given a Net, a batch `x` in model
 * input space and the class to explain for each image, return a signed tensor of
 * the same shape as `x` saying how much each input value counts for that class.
 * Wrappers such as SmoothGrad take any {@linkcode Attribution} and return one.
 *
 * The module also holds the reduction of an attribution to a per-pixel map
 * (`max_k |.|` over channels as in Simonyan et al. 2014, or a sum) and the plugin
 * convention: an *attribution plugin* takes the parameters in
 * {@linkcode ATTRIBUTION_PARAMS} (`class`, `render`) and puts its attribution in
 * the result's tensor `attribution`, so that other plugins (SmoothGrad, guided
 * Grad-CAM, the evaluations) compose with it by name through `ctx.run`/`ctx.runOn`,
 * user plugins included ({@linkcode pluginAttribution}).
 *
 * @example Saliency of the predicted class through the contract
 * ```ts ignore
 * import { tf } from "../../core/tf.ts";
 * import { attributionMap } from "./attribution.ts";
 * import { predictedClasses } from "./targets.ts";
 * import { saliencyAttribution } from "./saliency.ts";
 * const target = await predictedClasses(net, x);
 * const attr = await saliencyAttribution.attribute(net, x, target);
 * const map = attributionMap(attr); // [n, h, w], max_k |d s_y / d x|
 * tf.dispose([attr, map]);
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import type { AnyPlugin, Context } from "../../core/plugin.ts";
import type { Result } from "../../core/result.ts";
import { imagesFromPixels } from "../../core/inputs.ts";
import { checkTarget } from "./targets.ts";
import { ParamError } from "../../core/params.ts";

/**
 * An attribution method: one `attribute` call explains a whole batch.
 *
 * @typeParam O The method's options.
 */
export interface Attribution<O extends object = Record<string, unknown>> {
  /** The method's name (the plugin's name for built-in methods). */
  readonly name: string;
  /**
   * Attributes each image's class score to its input values.
   *
   * @param net The model.
   * @param x A batch `[n, h, w, c]` in model input space (not disposed).
   * @param target The class to explain, one per image (checked against the model).
   *   Methods that explain a layer unit instead say so in their options.
   * @param options Method options.
   * @returns A signed `[n, h, w, c]` tensor, the caller's to dispose.
   */
  attribute(
    net: Net,
    x: tf.Tensor4D,
    target: readonly number[],
    options?: O,
  ): Promise<tf.Tensor4D>;
}

/**
 * How an attribution `[n, h, w, c]` becomes a map `[n, h, w]`:
 * `max-abs` is Simonyan's `max_k |a_ijk|`, `sum-abs` sums `|a|` over channels,
 * `sum` sums the signed values (the total contribution of a pixel).
 */
export type MapReduction = "max-abs" | "sum-abs" | "sum";

/** The reductions, for parameter schemas. */
export const MAP_REDUCTIONS: readonly MapReduction[] = ["max-abs", "sum-abs", "sum"];

/**
 * The parameters every attribution plugin takes (spread them into its schema):
 * `class`, the class to explain (one for all images or one per image; -1 or left
 * out: the predicted class), and `render`, whether to draw the figure (composing
 * plugins turn it off).
 */
export const ATTRIBUTION_PARAMS = {
  class: {
    type: "numbers",
    help: "class to explain: one for all images or one per image (default: predicted)",
  },
  render: { type: "boolean", default: true, help: "draw the figure (off when composed)" },
} as const;

/**
 * Reduces an attribution over channels to one value per pixel.
 *
 * @param attribution `[n, h, w, c]`.
 * @param reduce `max-abs` (Simonyan), `sum-abs` or `sum`.
 * @returns A new `[n, h, w]` map.
 */
export function attributionMap(
  attribution: tf.Tensor4D,
  reduce: MapReduction = "max-abs",
): tf.Tensor3D {
  if (!MAP_REDUCTIONS.includes(reduce)) {
    throw new RangeError(
      `Unknown map reduction "${reduce}": use one of ${MAP_REDUCTIONS.join(", ")}`,
    );
  }
  return tf.tidy(() => {
    if (reduce === "max-abs") return attribution.abs().max(3) as tf.Tensor3D;
    if (reduce === "sum-abs") return attribution.abs().sum(3) as tf.Tensor3D;
    return attribution.sum(3) as tf.Tensor3D;
  });
}

/**
 * Takes the attribution out of an attribution plugin's result and frees the rest.
 *
 * @param result A result carrying tensor `attribution`.
 * @param plugin The plugin's name, for messages.
 * @returns The attribution, the caller's to dispose.
 * @throws {TypeError} when the result has no `attribution` tensor.
 */
export function takeAttribution(result: Result, plugin: string): tf.Tensor4D {
  const a = result.tensors.attribution;
  if (!a || a.rank !== 4) {
    result.dispose();
    throw new TypeError(
      `Plugin "${plugin}" is not an attribution plugin: its result has no [n, h, w, c] tensor "attribution" ` +
        "(attribution plugins take the parameters class and render and return that tensor)",
    );
  }
  delete result.tensors.attribution;
  result.dispose();
  return a as tf.Tensor4D;
}

/**
 * An attribution plugin (built-in or the user's, by name or object) seen through
 * the {@linkcode Attribution} contract: each call runs it with `ctx.runOn` on the
 * batch given, with `class` set to the targets and `render` off.
 *
 * @param ctx The running plugin's context (its Net is used).
 * @param plugin The attribution plugin or its registered name.
 * @param params Other parameters of that plugin.
 * @returns The attribution method.
 */
export function pluginAttribution(
  ctx: Context,
  plugin: AnyPlugin | string,
  params: Record<string, unknown> = {},
): Attribution {
  const name = typeof plugin === "string" ? plugin : plugin.name;
  return {
    name,
    async attribute(net, x, target) {
      if (net !== ctx.net) {
        throw new RangeError(
          `pluginAttribution("${name}") runs on the context's model; give that Net`,
        );
      }
      checkTarget(net, x, target, name);
      const pixels = net.toPixels(x) as tf.Tensor4D;
      const images = imagesFromPixels(net, pixels, [...target]);
      try {
        const result = await ctx.runOn(images, plugin, {
          ...params,
          class: [...target],
          render: false,
        }).catch((err) => {
          // A plugin without --class/--render is not an attribution method.
          if (!/^Unknown parameter --(class|render) for /.test((err as Error).message)) throw err;
          throw new ParamError(
            `"${name}" is not an attribution method (it takes no --class): name an attribution ` +
              "plugin such as saliency, guided-backprop or integrated-gradients",
          );
        });
        const a = takeAttribution(result, name);
        if (a.shape.join() !== x.shape.join()) {
          a.dispose();
          throw new RangeError(
            `Plugin "${name}" returned an attribution of shape [${a.shape}] for input [${x.shape}]`,
          );
        }
        return a;
      } finally {
        tf.dispose([images.pixels, images.x]);
      }
    },
  };
}
