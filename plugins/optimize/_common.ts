/**
 * What the optimize plugins share: layer lists from a comma-separated parameter,
 * the choice of optimizer by name, and images for display.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { adam, ascent, momentum, type Optimizer } from "./loop.ts";

/** Optimizer names the plugins accept. */
export const OPTIMIZERS = ["ascent", "momentum", "adam"] as const;

/** An optimizer by name; `ascent` takes steps normalized by the mean absolute gradient. */
export function optimizerByName(name: string, lr: number): Optimizer {
  if (name === "ascent") return ascent(lr, "mean-abs");
  if (name === "momentum") return momentum(lr);
  if (name === "adam") return adam(lr);
  throw new RangeError(`Unknown optimizer "${name}": use one of ${OPTIMIZERS.join(", ")}`);
}

/**
 * Layer names from a comma-separated list, each checked against the model.
 *
 * @param net The model.
 * @param list E.g. `"conv1,conv4"`; empty gives `fallback`.
 * @param fallback The layers used when none are given.
 * @param what The plugin, for messages.
 * @returns The names.
 */
export function layerList(
  net: Net,
  list: string | undefined,
  fallback: string[],
  what: string,
): string[] {
  const names = (list ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) {
    if (fallback.length === 0) throw new RangeError(`${what}: this model has no suitable layer`);
    return fallback;
  }
  for (const n of names) {
    if (!net.hasLayer(n)) {
      throw new RangeError(
        `${what}: the model has no layer "${n}"; give comma-separated names from: ${
          net.layers.filter((l) => l.role !== "input").map((l) => l.name).join(", ")
        }`,
      );
    }
  }
  return names;
}

/** Model-space images as display pixels in [0, 1] (clipped). */
export function displayPixels(net: Net, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => net.toPixels(x).clipByValue(0, 1) as tf.Tensor4D);
}

/** Checks an input image index. */
export function checkImage(index: number, count: number, what: string): void {
  if (index >= count) {
    throw new RangeError(
      `${what}: image ${index} does not exist; there are ${count} input images (0 to ${count - 1})`,
    );
  }
}
