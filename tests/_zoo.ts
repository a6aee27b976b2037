/**
 * Models as people bring them, built in code with tfjs layers (no downloads) and
 * small enough for CI: an Xception-like net (depthwise + 1x1 convs, 1x1 stride-2
 * projection shortcuts on even sizes, residual adds), a ResNet-style net with batch
 * norm, a nested transfer model (a functional base as one layer of a Sequential)
 * with a one-unit sigmoid head, and a two-output functional model.
 *
 * @module
 */
import { tf } from "../core/tf.ts";

let seed = 9000;
const init = () => tf.initializers.glorotUniform({ seed: ++seed });
const small = (lo = -0.1, hi = 0.1) =>
  tf.initializers.randomUniform({ minval: lo, maxval: hi, seed: ++seed });

type Sym = tf.SymbolicTensor;

function conv(
  name: string,
  filters: number,
  kernelSize: number,
  extra: Record<string, unknown> = {},
) {
  return tf.layers.conv2d({
    name,
    filters,
    kernelSize,
    padding: "same",
    kernelInitializer: init(),
    biasInitializer: small(),
    ...extra,
  });
}

function bn(name: string) {
  return tf.layers.batchNormalization({
    name,
    gammaInitializer: small(0.8, 1.2),
    betaInitializer: small(),
    movingMeanInitializer: small(),
    movingVarianceInitializer: small(0.8, 1.2),
  });
}

function dense(name: string, units: number, activation: "softmax" | "sigmoid") {
  return tf.layers.dense({
    name,
    units,
    activation,
    kernelInitializer: init(),
    biasInitializer: small(),
  });
}

/** Depthwise 3x3 then 1x1 conv: what a Keras SeparableConv2D computes. */
function sepconv(x: Sym, name: string, filters: number): Sym {
  const dw = tf.layers.depthwiseConv2d({
    name: `${name}_dw`,
    kernelSize: 3,
    padding: "same",
    depthwiseInitializer: init(),
    biasInitializer: small(),
  }).apply(x) as Sym;
  return conv(`${name}_pw`, filters, 1).apply(dw) as Sym;
}

/**
 * Xception-like, 32x32x3 -> 4 classes: each block is two depthwise separable convs
 * and a max pool, added to a 1x1 stride-2 projection of its input (32 and 16 px:
 * even sizes, the shape that once crashed the native filter gradient).
 */
export function xceptionLike(): tf.LayersModel {
  // Each model's weights come from its own seeds, whatever was built before it.
  seed = 10000;
  const input = tf.input({ shape: [32, 32, 3], name: "input_1" });
  let x = conv("block1_conv1", 8, 3, { activation: "relu" }).apply(input) as Sym;
  for (const [b, filters] of [[2, 12], [3, 16]] as const) {
    const shortcut = conv(`block${b}_proj`, filters, 1, { strides: 2 }).apply(x) as Sym;
    let y = sepconv(x, `block${b}_sepconv1`, filters);
    y = tf.layers.activation({ name: `block${b}_sepconv1_act`, activation: "relu" }).apply(
      y,
    ) as Sym;
    y = sepconv(y, `block${b}_sepconv2`, filters);
    y = tf.layers.activation({ name: `block${b}_sepconv2_act`, activation: "relu" }).apply(
      y,
    ) as Sym;
    y = tf.layers.maxPooling2d({ name: `block${b}_pool`, poolSize: 3, strides: 2, padding: "same" })
      .apply(y) as Sym;
    x = tf.layers.add({ name: `add_${b}` }).apply([y, shortcut]) as Sym;
  }
  x = tf.layers.globalAveragePooling2d({ name: "avg_pool" }).apply(x) as Sym;
  const out = dense("predictions", 4, "softmax").apply(x) as Sym;
  return tf.model({ inputs: input, outputs: out, name: "mini_xception" });
}

/** ResNet-style, 32x32x3 -> 5 classes: conv-BN-ReLU stem, two residual blocks with BN. */
export function resnetLike(): tf.LayersModel {
  // Each model's weights come from its own seeds, whatever was built before it.
  seed = 11000;
  const input = tf.input({ shape: [32, 32, 3], name: "input_1" });
  const relu = (name: string, t: Sym) => tf.layers.reLU({ name }).apply(t) as Sym;
  let x = relu(
    "stem_relu",
    bn("stem_bn").apply(conv("stem_conv", 8, 3).apply(input) as Sym) as Sym,
  );
  for (const [b, filters, stride] of [[1, 8, 1], [2, 16, 2]] as const) {
    let y = conv(`res${b}_conv1`, filters, 3, { strides: stride }).apply(x) as Sym;
    y = relu(`res${b}_relu1`, bn(`res${b}_bn1`).apply(y) as Sym);
    y = bn(`res${b}_bn2`).apply(conv(`res${b}_conv2`, filters, 3).apply(y) as Sym) as Sym;
    const shortcut = stride === 1 ? x : bn(`res${b}_proj_bn`).apply(
      conv(`res${b}_proj`, filters, 1, { strides: stride }).apply(x) as Sym,
    ) as Sym;
    x = relu(`res${b}_out`, tf.layers.add({ name: `res${b}_add` }).apply([y, shortcut]) as Sym);
  }
  x = tf.layers.globalAveragePooling2d({ name: "avg_pool" }).apply(x) as Sym;
  const out = dense("fc", 5, "softmax").apply(x) as Sym;
  return tf.model({ inputs: input, outputs: out, name: "mini_resnet" });
}

/** Transfer learning: a functional base (conv, BN, depthwise, 1x1) in a Sequential, sigmoid head. */
export function nestedTransfer(): tf.LayersModel {
  // Each model's weights come from its own seeds, whatever was built before it.
  seed = 12000;
  const bx = tf.input({ shape: [32, 32, 3], name: "base_input" });
  let y = conv("conv1", 8, 3, { activation: "relu" }).apply(bx) as Sym;
  y = bn("bn1").apply(y) as Sym;
  y = tf.layers.depthwiseConv2d({
    name: "dw",
    kernelSize: 3,
    strides: 2,
    padding: "same",
    activation: "relu",
    depthwiseInitializer: init(),
  }).apply(y) as Sym;
  y = conv("conv2", 12, 1, { activation: "relu" }).apply(y) as Sym;
  const base = tf.model({ inputs: bx, outputs: y, name: "base" });
  return tf.sequential({
    name: "transfer",
    layers: [
      base,
      tf.layers.globalAveragePooling2d({ name: "gap" }),
      dense("head", 1, "sigmoid"),
    ],
  });
}

/** Two outputs from one trunk, 32x32x3: `cls` (3 classes) and `aux` (2 classes). */
export function twoOutput(): tf.LayersModel {
  // Each model's weights come from its own seeds, whatever was built before it.
  seed = 13000;
  const input = tf.input({ shape: [32, 32, 3], name: "input_1" });
  let x = conv("conv1", 8, 3, { activation: "relu" }).apply(input) as Sym;
  x = conv("conv2", 12, 3, { strides: 2, activation: "relu" }).apply(x) as Sym;
  const g = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(x) as Sym;
  const cls = dense("cls", 3, "softmax").apply(g) as Sym;
  const aux = dense("aux", 2, "softmax").apply(g) as Sym;
  const model = tf.model({ inputs: input, outputs: [cls, aux], name: "two_heads" });
  // Random weights average to a nearly flat softmax after global pooling (p within
  // 0.24-0.42 for any image), which no budget flips: scale the class head as
  // training would sharpen it.
  const head = model.getLayer("cls");
  const [k, b] = head.getWeights();
  const sharp = k.mul(30);
  head.setWeights([sharp, b]);
  sharp.dispose();
  return model;
}
