/**
 * A trained model inside a job's state: the weights of every layer (nested
 * models walked by path, e.g. `features/conv1`) and each layer's `trainable`
 * flag, as JSON and float32 arrays, and back into a model of the same
 * architecture. A job whose result carries a model it trained (the transfer
 * table's fine-tuned net) hands it from the shard that trained it to the
 * merge this way.
 *
 * @example A model's weights into a fresh copy of its architecture
 * ```ts
 * import { tf } from "../tf.ts";
 * import { encodeModel, restoreModel } from "./model_state.ts";
 * await tf.setBackend("cpu");
 * const build = (seed: number) => tf.sequential({ layers: [tf.layers.dense({
 *   inputShape: [3], units: 2, name: "d",
 *   kernelInitializer: tf.initializers.glorotUniform({ seed }),
 * })] });
 * const a = build(1), b = build(2);
 * restoreModel(b, await encodeModel(a, "m"), "m");
 * const same = tf.tidy(() => a.getWeights()[0].equal(b.getWeights()[0]).all().dataSync()[0]);
 * if (same !== 1) throw new Error("weights differ");
 * a.dispose();
 * b.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { StatePayload } from "./mergeable.ts";

/** One layer of an encoded model. */
interface EncodedLayer {
  path: string;
  trainable: boolean;
  shapes: number[][];
}

/** Every layer of a model, nested models included, outer before inner, with its path. */
function walk(model: tf.LayersModel, prefix = ""): { path: string; layer: tf.layers.Layer }[] {
  return model.layers.flatMap((l) => {
    const path = `${prefix}${l.name}`;
    return l instanceof tf.LayersModel
      ? [{ path, layer: l as tf.layers.Layer }, ...walk(l, `${path}/`)]
      : [{ path, layer: l }];
  });
}

/**
 * A model's weights and trainable flags as a state payload, its arrays named
 * `<key>@<layer>@<k>`.
 *
 * @param model The model.
 * @param key Prefix of the array names (a state may hold other arrays).
 * @returns JSON (layers, shapes, flags) and float32 arrays.
 */
export async function encodeModel(model: tf.LayersModel, key: string): Promise<StatePayload> {
  const arrays: Record<string, Float32Array> = {};
  const layers: EncodedLayer[] = [];
  for (const { path, layer } of walk(model)) {
    // getWeights hands out the variables' own values: read, never disposed.
    // Read asynchronously: WebGPU cannot read synchronously.
    const weights = layer instanceof tf.LayersModel ? [] : layer.getWeights();
    for (const [k, w] of weights.entries()) {
      arrays[`${key}@${path}@${k}`] = Float32Array.from(await w.data());
    }
    layers.push({ path, trainable: layer.trainable, shapes: weights.map((w) => w.shape) });
  }
  return { json: layers, arrays };
}

/**
 * Sets a model of the same architecture to an encoded model's weights and
 * trainable flags.
 *
 * @param model The fresh model (changed in place).
 * @param payload What {@linkcode encodeModel} gave (its arrays may sit among others).
 * @param key The prefix it was encoded with.
 * @throws {RangeError} when the layers or shapes differ, or an array is missing.
 */
export function restoreModel(model: tf.LayersModel, payload: StatePayload, key: string): void {
  const encoded = payload.json as EncodedLayer[];
  const layers = walk(model);
  if (
    !Array.isArray(encoded) || encoded.length !== layers.length ||
    encoded.some((e, i) => e.path !== layers[i].path)
  ) {
    throw new RangeError(
      `The state's model (${
        Array.isArray(encoded) ? encoded.map((e) => e.path).join(",") : "none"
      }) does not have this model's layers (${layers.map((l) => l.path).join(",")})`,
    );
  }
  // Outer layers first: a nested model's flag sets its layers', which come after it.
  encoded.forEach((e, i) => (layers[i].layer.trainable = e.trainable));
  encoded.forEach((e, i) => {
    if (e.shapes.length === 0) return;
    const weights = e.shapes.map((shape, k) => {
      const a = payload.arrays[`${key}@${e.path}@${k}`];
      if (!(a instanceof Float32Array)) {
        throw new RangeError(`The state lacks weight ${k} of layer ${e.path} of its model`);
      }
      return tf.tensor(a, shape);
    });
    try {
      layers[i].layer.setWeights(weights);
    } finally {
      tf.dispose(weights);
    }
  });
}
