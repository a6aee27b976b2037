/**
 * Small seeded models shared by the core tests: a Sequential conv net, a
 * functional net with a residual add and a concat branch, and the hand-computed
 * "tiny" net of the gradient-rule tests.
 *
 * @module
 */
import { tf } from "../core/tf.ts";

/** A Sequential conv net: conv relu (fused), pool, conv, flatten, dense, softmax. */
export function sequentialNet(seed = 1, channels = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 100 + s });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, channels],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        padding: "same",
        name: "conv1",
        kernelInitializer: init(1),
        biasInitializer: tf.initializers.constant({ value: 0.05 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "pool1" }),
      tf.layers.conv2d({
        filters: 6,
        kernelSize: 3,
        activation: "relu",
        name: "conv2",
        kernelInitializer: init(2),
        biasInitializer: tf.initializers.constant({ value: 0.05 }),
      }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 5, name: "logits", kernelInitializer: init(3) }),
      tf.layers.activation({ activation: "softmax", name: "probs" }),
    ],
  });
}

/** A functional net with a residual add, a concat branch and a fused softmax. */
export function functionalNet(seed = 2): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 100 + s });
  const input = tf.input({ shape: [10, 10, 3], name: "image" });
  const conv = (name: string, filters: number, k: number, s: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: k,
      padding: "same",
      activation: "relu",
      name,
      kernelInitializer: init(s),
    });
  const a = conv("a", 4, 3, 1).apply(input) as tf.SymbolicTensor;
  const b = conv("b", 4, 3, 2).apply(a) as tf.SymbolicTensor;
  const skip = conv("skip", 4, 1, 3).apply(input) as tf.SymbolicTensor;
  const add = tf.layers.add({ name: "add" }).apply([b, skip]) as tf.SymbolicTensor;
  const side = conv("side", 2, 5, 4).apply(add) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: "cat" }).apply([add, side]) as tf.SymbolicTensor;
  const pool = tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }).apply(
    cat,
  ) as tf.SymbolicTensor;
  const drop = tf.layers.dropout({ rate: 0.5, name: "drop" }).apply(pool) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(drop) as tf.SymbolicTensor;
  const out = tf.layers.dense({
    units: 3,
    activation: "softmax",
    name: "out",
    kernelInitializer: init(5),
  }).apply(gap) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/**
 * The hand-computed net: input 1x2x1, a 1x1 conv with kernel [1, -1] and ReLU,
 * flatten, a dense unit with weights [1, 2, -1, -2] and no bias. `fused` puts the
 * ReLU in the conv; otherwise it is a separate Activation layer.
 */
export function tinyNet(fused: boolean): tf.LayersModel {
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({
      inputShape: [1, 2, 1],
      filters: 2,
      kernelSize: 1,
      useBias: false,
      activation: fused ? "relu" : "linear",
      name: "conv",
      weights: [tf.tensor4d([1, -1], [1, 1, 1, 2])],
    }),
  ];
  if (!fused) layers.push(tf.layers.activation({ activation: "relu", name: "relu" }));
  layers.push(
    tf.layers.flatten({ name: "flatten" }),
    tf.layers.dense({
      units: 1,
      useBias: false,
      name: "score",
      weights: [tf.tensor2d([1, 2, -1, -2], [4, 1])],
    }),
  );
  return tf.sequential({ layers });
}

/** Runs `fn` and checks that it leaves no tensors behind. */
export async function noLeak<T>(fn: () => Promise<T> | T): Promise<T> {
  const before = tf.memory().numTensors;
  const r = await fn();
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`leaked ${after - before} tensors`);
  return r;
}
