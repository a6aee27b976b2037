/**
 * Real-size reference architectures built with tfjs layers (random weights: no
 * pretrained ImageNet weights can be downloaded here): VGG16, ResNet-50 (v1),
 * AlexNet v2 and MobileNetV2, with the layer names Keras and TF-slim give them.
 * They are what the design plugins' golden values (parameters, multiply-adds,
 * receptive fields) are checked on, and what the real-size benchmarks run.
 *
 * @example VGG16 without its top has 14,714,688 parameters
 * ```ts
 * import { vgg16 } from "./architectures.ts";
 * const model = vgg16({ size: 32 });
 * if (model.countParams() !== 14_714_688) throw new Error(`${model.countParams()}`);
 * model.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";

/** Options of the reference architectures. */
export interface ArchitectureOptions {
  /** Input height and width. @default 224 */
  size?: number;
  /** Keep the classifier on top (a softmax over `classes`). @default false */
  top?: boolean;
  /** Classes of the top. @default 1000 */
  classes?: number;
}

type T = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: T | T[]): T => layer.apply(x) as T;

/**
 * VGG16 (Simonyan & Zisserman 2015, configuration D) as Keras builds it:
 * 13 3x3 convs in five blocks, each block ending in a 2x2 max pool.
 *
 * @param options Size and top.
 * @returns The model (`block5_pool` is the last layer without top).
 */
export function vgg16(options: ArchitectureOptions = {}): tf.LayersModel {
  const { size = 224, top = false, classes = 1000 } = options;
  const input = tf.input({ shape: [size, size, 3] });
  let x = input;
  const blocks: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      x = apply(
        tf.layers.conv2d({
          name: `block${b + 1}_conv${c}`,
          filters,
          kernelSize: 3,
          padding: "same",
          activation: "relu",
        }),
        x,
      );
    }
    x = apply(tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }), x);
  });
  if (top) {
    x = apply(tf.layers.flatten({ name: "flatten" }), x);
    x = apply(tf.layers.dense({ name: "fc1", units: 4096, activation: "relu" }), x);
    x = apply(tf.layers.dense({ name: "fc2", units: 4096, activation: "relu" }), x);
    x = apply(tf.layers.dense({ name: "predictions", units: classes, activation: "softmax" }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: "vgg16" });
}

/**
 * ResNet-50 v1 (He et al. 2016) as Keras builds it: a 7x7 stride-2 stem and a
 * 3x3 max pool, then bottleneck blocks (1x1, 3x3, 1x1 with batch norm) in
 * stages of 3, 4, 6 and 3, the stride on the first 1x1 of a stage, a projection
 * shortcut in each stage's first block. (torchvision's resnet50 is v1.5: the
 * stride sits on the 3x3, which changes multiply-adds and the receptive field,
 * 427 instead of 483, but not the parameters; its convs have no biases.)
 *
 * @param options Size and top.
 * @returns The model (`conv5_block3_out` is the last layer without top).
 */
export function resnet50(options: ArchitectureOptions = {}): tf.LayersModel {
  const { size = 224, top = false, classes = 1000 } = options;
  const input = tf.input({ shape: [size, size, 3] });
  const convBn = (x: T, name: string, filters: number, kernel: number, stride = 1): T => {
    const y = apply(
      tf.layers.conv2d({
        name: `${name}_conv`,
        filters,
        kernelSize: kernel,
        strides: stride,
        padding: "same",
      }),
      x,
    );
    return apply(tf.layers.batchNormalization({ name: `${name}_bn`, epsilon: 1.001e-5 }), y);
  };
  const relu = (x: T, name: string) => apply(tf.layers.activation({ name, activation: "relu" }), x);
  const block = (x: T, name: string, filters: number, stride: number, project: boolean): T => {
    let y = relu(convBn(x, `${name}_1`, filters, 1, stride), `${name}_1_relu`);
    y = relu(convBn(y, `${name}_2`, filters, 3), `${name}_2_relu`);
    y = convBn(y, `${name}_3`, filters * 4, 1);
    const shortcut = project ? convBn(x, `${name}_0`, filters * 4, 1, stride) : x;
    return relu(apply(tf.layers.add({ name: `${name}_add` }), [shortcut, y]), `${name}_out`);
  };
  let x = relu(convBn(input, "conv1", 64, 7, 2), "conv1_relu");
  x = apply(
    tf.layers.maxPooling2d({ name: "pool1_pool", poolSize: 3, strides: 2, padding: "same" }),
    x,
  );
  const stages: [number, number, number][] = [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]];
  stages.forEach(([filters, blocks, stride], s) => {
    for (let b = 0; b < blocks; b++) {
      x = block(x, `conv${s + 2}_block${b + 1}`, filters, b === 0 ? stride : 1, b === 0);
    }
  });
  if (top) {
    x = apply(tf.layers.globalAveragePooling2d({ name: "avg_pool" }), x);
    x = apply(tf.layers.dense({ name: "predictions", units: classes, activation: "softmax" }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: "resnet50" });
}

/**
 * AlexNet v2 as TF-slim builds it (the one-tower variant of Krizhevsky et al.
 * 2012 in "One weird trick", Krizhevsky 2014): an 11x11 stride-4 conv, 5x5 and
 * 3x3 convs, 3x3 stride-2 max pools; the fully connected layers as convs.
 *
 * @param options Size and top.
 * @returns The model (`pool5` is the last layer without top).
 */
export function alexnetV2(options: ArchitectureOptions = {}): tf.LayersModel {
  const { size = 224, top = false, classes = 1000 } = options;
  const input = tf.input({ shape: [size, size, 3] });
  const conv = (x: T, name: string, filters: number, kernel: number, o: object = {}) =>
    apply(
      tf.layers.conv2d({
        name,
        filters,
        kernelSize: kernel,
        padding: "same",
        activation: "relu",
        ...o,
      }),
      x,
    );
  const pool = (x: T, name: string) =>
    apply(tf.layers.maxPooling2d({ name, poolSize: 3, strides: 2 }), x);
  let x = conv(input, "conv1", 64, 11, { strides: 4, padding: "valid" });
  x = pool(x, "pool1");
  x = pool(conv(x, "conv2", 192, 5), "pool2");
  x = conv(x, "conv3", 384, 3);
  x = conv(x, "conv4", 384, 3);
  x = pool(conv(x, "conv5", 256, 3), "pool5");
  if (top) {
    x = conv(x, "fc6", 4096, 5, { padding: "valid" });
    x = conv(x, "fc7", 4096, 1);
    x = apply(tf.layers.globalAveragePooling2d({ name: "squeeze" }), x);
    x = apply(tf.layers.dense({ name: "fc8", units: classes, activation: "softmax" }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: "alexnet_v2" });
}

/**
 * MobileNetV2 (Sandler et al. 2018), width 1.0, as Keras builds it: inverted
 * residual blocks (1x1 expansion by 6, 3x3 depthwise, linear 1x1 projection,
 * batch norm after each, ReLU6), a residual add where shapes allow, and a 1x1
 * conv to 1,280 channels.
 *
 * @param options Size and top.
 * @returns The model (`out_relu` is the last layer without top).
 */
export function mobilenetV2(options: ArchitectureOptions = {}): tf.LayersModel {
  const { size = 224, top = false, classes = 1000 } = options;
  const input = tf.input({ shape: [size, size, 3] });
  const bn = (x: T, name: string) =>
    apply(tf.layers.batchNormalization({ name, epsilon: 1e-3, momentum: 0.999 }), x);
  const relu6 = (x: T, name: string) => apply(tf.layers.reLU({ name, maxValue: 6 }), x);
  const pointwise = (x: T, name: string, filters: number) =>
    apply(tf.layers.conv2d({ name, filters, kernelSize: 1, useBias: false }), x);
  let x = relu6(
    bn(
      apply(
        tf.layers.conv2d({
          name: "Conv1",
          filters: 32,
          kernelSize: 3,
          strides: 2,
          padding: "same",
          useBias: false,
        }),
        input,
      ),
      "bn_Conv1",
    ),
    "Conv1_relu",
  );
  let channels = 32, id = 0;
  const settings: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  for (const [expansion, filters, repeats, firstStride] of settings) {
    for (let r = 0; r < repeats; r++) {
      const stride = r === 0 ? firstStride : 1;
      const name = id === 0 ? "expanded_conv" : `block_${id}`;
      let y = x;
      if (expansion !== 1) {
        y = relu6(
          bn(pointwise(y, `${name}_expand`, channels * expansion), `${name}_expand_BN`),
          `${name}_expand_relu`,
        );
      }
      y = apply(
        tf.layers.depthwiseConv2d({
          name: `${name}_depthwise`,
          kernelSize: 3,
          strides: stride,
          padding: "same",
          useBias: false,
        }),
        y,
      );
      y = relu6(bn(y, `${name}_depthwise_BN`), `${name}_depthwise_relu`);
      y = bn(pointwise(y, `${name}_project`, filters), `${name}_project_BN`);
      x = stride === 1 && channels === filters
        ? apply(tf.layers.add({ name: `${name}_add` }), [x, y])
        : y;
      channels = filters;
      id++;
    }
  }
  x = relu6(bn(pointwise(x, "Conv_1", 1280), "Conv_1_bn"), "out_relu");
  if (top) {
    x = apply(tf.layers.globalAveragePooling2d({ name: "global_average_pooling2d" }), x);
    x = apply(tf.layers.dense({ name: "predictions", units: classes, activation: "softmax" }), x);
  }
  return tf.model({ inputs: input, outputs: x, name: "mobilenetv2_1.00" });
}
