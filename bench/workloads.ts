/**
 * The benchmark workloads, shared by `convnet_bench.ts` (Deno.bench) and
 * `tfjs_side.ts` (the tfjs half of `compare.ts`); `compare_torch.py` builds the
 * same nets in PyTorch.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { gradient, type ReluRule } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";

/** VGG-style net at 64x64x3: conv3x3 32-32, pool, 64-64, pool, 128, pool, dense 256, 10. */
export function vggNet(): tf.LayersModel {
  const conv = (filters: number, first = false) =>
    tf.layers.conv2d({
      ...(first ? { inputShape: [64, 64, 3] } : {}),
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
    });
  const pool = () => tf.layers.maxPooling2d({ poolSize: 2 });
  return tf.sequential({
    layers: [
      conv(32, true),
      conv(32),
      pool(),
      conv(64),
      conv(64),
      pool(),
      conv(128),
      pool(),
      tf.layers.flatten(),
      tf.layers.dense({ units: 256, activation: "relu" }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

/** MNIST-size net at 28x28x1: conv 16, 16, pool, 32, 32, pool, dense 64, 10 (logits). */
export function mnistNet(): tf.LayersModel {
  const conv = (filters: number, first = false) =>
    tf.layers.conv2d({
      ...(first ? { inputShape: [28, 28, 1] } : {}),
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
    });
  return tf.sequential({
    layers: [
      conv(16, true),
      conv(16),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(32),
      conv(32),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: "relu" }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

/** One timed unit of work: runs once and waits for its result. */
export type Workload = () => void;

/**
 * The workloads, by the row names the tables use. `saliency` and `guided backprop`
 * are d logit 0 / d input on the MNIST-size net through convlens's `gradient`
 * (rule "plain" / "guided"); `class-model step` (logit 0 - 0.01 ||x||^2, step 0.1 g)
 * and `deep-dream step` (mean square of the second pooled activation, step
 * 0.01 g / mean|g|) are one ascent step on the VGG-style net's input.
 */
export const WORKLOAD_NAMES = [
  "forward b1",
  "forward b64",
  "input grad b1",
  "input grad b16",
  "train step b64",
  "saliency b1",
  "saliency b16",
  "guided backprop b1",
  "guided backprop b16",
  "class-model step b1",
  "deep-dream step b1",
] as const;

/** A workload name. */
export type WorkloadName = typeof WORKLOAD_NAMES[number];

/** A workload that returns the tensor to read (the caller reads and disposes it). */
export type TensorWorkload = () => tf.Tensor;

/**
 * Builds every workload on the current backend as functions that return the
 * tensor whose read ends the work (so that `gpu_side.ts` can read it
 * asynchronously); `dispose` frees their tensors.
 */
export function buildTensorWorkloads(): {
  make: Record<WorkloadName, TensorWorkload>;
  dispose: () => void;
} {
  const vgg = vggNet();
  const mnist = mnistNet();
  const x1 = tf.randomUniform([1, 64, 64, 3], 0, 1, "float32", 1);
  const x16 = tf.randomUniform([16, 64, 64, 3], 0, 1, "float32", 2);
  const x64 = tf.randomUniform([64, 64, 64, 3], 0, 1, "float32", 3);
  const m64 = tf.randomUniform([64, 28, 28, 1], 0, 1, "float32", 4);
  const m1 = tf.randomUniform([1, 28, 28, 1], 0, 1, "float32", 6);
  const m16 = tf.randomUniform([16, 28, 28, 1], 0, 1, "float32", 7);
  const labels = tf.tidy(() =>
    tf.oneHot(tf.randomUniform([64], 0, 10, "int32", 5) as tf.Tensor1D, 10)
  );
  const optimizer = tf.train.sgd(0.01);
  const forward = (x: tf.Tensor) => () => vgg.predict(x) as tf.Tensor;
  // The gradient of logit 0 summed over the batch: each image's own d logit/d input.
  const inputGrad = (x: tf.Tensor) => () =>
    tf.tidy(() =>
      tf.grad((v: tf.Tensor) => (vgg.apply(v) as tf.Tensor).slice([0, 0], [-1, 1]).sum())(x)
    );
  const train = () =>
    optimizer.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(labels, mnist.apply(m64, { training: true }) as tf.Tensor),
      true,
    )!;
  // Saliency and guided backprop through convlens's own gradient machinery, on a
  // second MNIST-size net (the training step keeps changing the first one's weights).
  const mnistEval = mnistNet();
  const mnistLens = Net.fromModel(mnistEval);
  const logit0: Objective = {
    name: "logit0",
    logits: true,
    perImage: ({ result }) => result.logits!.slice([0, 0], [-1, 1]).reshape([-1]) as tf.Tensor1D,
  };
  const attribution = (x: tf.Tensor, rule: ReluRule) => () => {
    const { grad, value } = gradient(mnistLens, x, logit0, { rule });
    value.dispose();
    return grad;
  };
  // One step of gradient ascent on the input of the VGG-style net, from the
  // current x (which each step replaces): forward + input gradient + update.
  const vggLens = Net.fromModel(vgg);
  const pool2 = vggLens.layers.filter((l) => l.role === "pool")[1].name;
  const classModel: Objective = {
    name: "logit0 - 0.01 l2",
    logits: true,
    perImage: ({ result, input }) =>
      result.logits!.slice([0, 0], [-1, 1]).reshape([-1])
        .sub(input.square().reshape([input.shape[0], -1]).sum(1).mul(0.01)) as tf.Tensor1D,
  };
  // The mean of a^2 over the whole batch, as per-image values that sum to it: each
  // image's sum of squares over the batch's element count.
  const dream: Objective = {
    name: `layerEnergy(${pool2})`,
    taps: [pool2],
    perImage: ({ result }) => {
      const a = result.taps[pool2];
      return a.square().reshape([a.shape[0], -1]).sum(1).div(a.size) as tf.Tensor1D;
    },
  };
  let cmX = x1.clone();
  let ddX = x1.clone();
  const classModelStep = () => {
    const { grad, value } = gradient(vggLens, cmX, classModel);
    const next = tf.tidy(() => cmX.add(grad.mul(0.1)));
    tf.dispose([grad, value, cmX]);
    cmX = next;
    return cmX.clone();
  };
  // Normalized step: lr * g / mean(|g|).
  const deepDreamStep = () => {
    const { grad, value } = gradient(vggLens, ddX, dream);
    const next = tf.tidy(() => ddX.add(grad.div(grad.abs().mean().add(1e-8)).mul(0.01)));
    tf.dispose([grad, value, ddX]);
    ddX = next;
    return ddX.clone();
  };
  return {
    make: {
      "forward b1": forward(x1),
      "forward b64": forward(x64),
      "input grad b1": inputGrad(x1),
      "input grad b16": inputGrad(x16),
      "train step b64": train,
      "saliency b1": attribution(m1, "plain"),
      "saliency b16": attribution(m16, "plain"),
      "guided backprop b1": attribution(m1, "guided"),
      "guided backprop b16": attribution(m16, "guided"),
      "class-model step b1": classModelStep,
      "deep-dream step b1": deepDreamStep,
    },
    dispose: () => {
      tf.dispose([x1, x16, x64, m64, m1, m16, labels, cmX, ddX]);
      optimizer.dispose();
      vgg.dispose();
      mnist.dispose();
      mnistEval.dispose();
    },
  };
}

/** Builds every workload on the current backend; `dispose` frees their tensors. */
export function buildWorkloads(): { run: Record<WorkloadName, Workload>; dispose: () => void } {
  const { make, dispose } = buildTensorWorkloads();
  const run = {} as Record<WorkloadName, Workload>;
  for (const name of WORKLOAD_NAMES) {
    run[name] = () => {
      const t = make[name]();
      t.dataSync();
      t.dispose();
    };
  }
  return { run, dispose };
}

/** Median milliseconds of `repeats` runs after `warmup` runs. */
export function medianMs(work: Workload, warmup: number, repeats: number): number {
  for (let i = 0; i < warmup; i++) work();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    work();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  return times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
}
