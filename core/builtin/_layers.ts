/**
 * The layers the built-in models share: a named 3x3 ReLU convolution and the
 * classifier head (`logits` then a `probs` softmax), initializers seeded.
 *
 * @module
 */
import { tf } from "../tf.ts";

/**
 * A 3x3 "same" ReLU convolution with He-normal weights.
 * @param name Layer name.
 * @param filters Output channels.
 * @param seed Seed of its initializer.
 * @param inputShape `[h, w, c]` for a model's first layer.
 * @returns The layer.
 */
export function conv3x3(
  name: string,
  filters: number,
  seed: number,
  inputShape?: [number, number, number],
): tf.layers.Layer {
  return tf.layers.conv2d({
    name,
    filters,
    kernelSize: 3,
    padding: "same",
    activation: "relu",
    kernelInitializer: tf.initializers.heNormal({ seed }),
    ...(inputShape ? { inputShape } : {}),
  });
}

/**
 * Adds the classifier head: a `logits` dense layer (Glorot-uniform weights)
 * and its `probs` softmax, the layers the sidecars name.
 * @param model The model to end.
 * @param classes Number of classes.
 * @param seed Seed of the logits' initializer.
 */
export function addClassifierHead(model: tf.Sequential, classes: number, seed: number): void {
  model.add(tf.layers.dense({
    name: "logits",
    units: classes,
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
  }));
  model.add(tf.layers.activation({ name: "probs", activation: "softmax" }));
}
