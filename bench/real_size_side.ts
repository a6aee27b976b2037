/**
 * The convlens half of `real_size.ts`: one row of one real-size architecture
 * (ResNet-50, VGG16 or MobileNetV2 without their tops, built by
 * `plugins/design/architectures.ts`, random weights) at 224x224, timed in this
 * process through convlens's own `Net` and `gradient` (what the plugins run).
 * `real_size_torch.py` is the same row in PyTorch.
 *
 * Rows: forward b1/b8; input grad b1/b8 (d score / d input, the score being
 * channel 7 of the last map averaged over space, as a 1x1 head's logit would
 * be); grad-cam b1 (the gradient at the last stage's input, channel weights,
 * map); smoothgrad 16 (16 noisy copies in one batch); deep-dream step 224 and
 * 448 (mean square of a middle layer, normalized ascent step); pgd step b8
 * (cross-entropy of the spatially averaged map, a signed step, projection).
 *
 * Usage: deno run -A bench/real_size_side.ts --arch resnet50 --row "input grad b1"
 *   [--repeats 5] [--warmup 1] [--backend wasm]
 * Prints one JSON object: median ms, peak RSS (MB), parameters.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { gradient } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { mobilenetV2, resnet50, vgg16 } from "../plugins/design/architectures.ts";
import { medianMs } from "./workloads.ts";

/** Per architecture: its builder, the DeepDream layer, the Grad-CAM layer. */
const ARCHS = {
  resnet50: { build: resnet50, dream: "conv4_block6_out", cam: "conv4_block6_out" },
  vgg16: { build: vgg16, dream: "block4_pool", cam: "block5_conv3" },
  mobilenet: { build: mobilenetV2, dream: "block_13_project_BN", cam: "block_16_project_BN" },
} as const;

/** The benchmark rows, in the table's order. */
export const REAL_SIZE_ROWS = [
  "forward b1",
  "forward b8",
  "input grad b1",
  "input grad b8",
  "grad-cam b1",
  "smoothgrad 16",
  "deep-dream step 224",
  "deep-dream step 448",
  "pgd step b8",
] as const;

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      arch: { type: "string", default: "resnet50" },
      row: { type: "string", default: "forward b1" },
      repeats: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      backend: { type: "string", default: "wasm" },
    },
  });

  const arch = ARCHS[values.arch as keyof typeof ARCHS];
  if (!arch) {
    throw new RangeError(`Unknown --arch ${values.arch}: ${Object.keys(ARCHS).join(", ")}`);
  }
  const row = values.row as typeof REAL_SIZE_ROWS[number];
  if (!REAL_SIZE_ROWS.includes(row)) {
    throw new RangeError(`Unknown --row ${row}: ${REAL_SIZE_ROWS.join(", ")}`);
  }
  await initBackend(values.backend, { quiet: true });
  const size = row === "deep-dream step 448" ? 448 : 224;
  const model = arch.build({ size });
  const net = Net.fromModel(model);
  const x1 = tf.randomUniform([1, size, size, 3], 0, 1, "float32", 1);
  const x8 = tf.randomUniform([8, size, size, 3], 0, 1, "float32", 2);
  const channels = net.layers.at(-1)!.outputShape.at(-1)!;
  const score: Objective = {
    name: "channel 7",
    output: true,
    perImage: ({ result }) =>
      result.output.slice([0, 0, 0, 7], [-1, -1, -1, 1]).mean([1, 2, 3]) as tf.Tensor1D,
  };
  const dream: Objective = {
    name: `energy(${arch.dream})`,
    taps: [arch.dream],
    perImage: ({ result }) => {
      const a = result.taps[arch.dream];
      return a.square().reshape([a.shape[0], -1]).sum(1).div(a.size) as tf.Tensor1D;
    },
  };
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32"), channels);
  const crossEntropy: Objective = {
    name: "cross-entropy",
    output: true,
    perImage: ({ result }) => {
      const logits = result.output.mean([1, 2]);
      // Per image: -sum(onehot * log softmax).
      return labels.mul(tf.logSoftmax(logits)).sum(1).neg() as tf.Tensor1D;
    },
  };
  const grad = (x: tf.Tensor, objective: Objective, wrt?: string) => {
    const r = gradient(net, x, objective, wrt ? { wrt } : {});
    r.value.dispose();
    return r.grad;
  };
  let dd = x1.clone();
  let pgd = x8.clone();
  const rows: Record<typeof REAL_SIZE_ROWS[number], () => tf.Tensor> = {
    "forward b1": () => net.forward(x1).output,
    "forward b8": () => net.forward(x8).output,
    "input grad b1": () => grad(x1, score),
    "input grad b8": () => grad(x8, score),
    "grad-cam b1": () => {
      const { grad: g, value, activation: a } = gradient(net, x1, score, {
        wrt: arch.cam,
        activation: true,
      });
      const cam = tf.tidy(() => tf.relu(a!.mul(g.mean([1, 2], true)).sum(3)));
      tf.dispose([a!, g, value]);
      return cam;
    },
    "smoothgrad 16": () => {
      const noisy = tf.tidy(() => x1.add(tf.randomNormal([16, size, size, 3], 0, 0.15)));
      const g = grad(noisy, score);
      const mean = g.mean(0);
      tf.dispose([noisy, g]);
      return mean;
    },
    "deep-dream step 224": () => {
      const g = grad(dd, dream);
      const next = tf.tidy(() => dd.add(g.div(g.abs().mean().add(1e-8)).mul(0.01)));
      tf.dispose([g, dd]);
      dd = next;
      return dd.clone();
    },
    "deep-dream step 448": () => rows["deep-dream step 224"](),
    "pgd step b8": () => {
      const g = grad(pgd, crossEntropy);
      const next = tf.tidy(() =>
        tf.minimum(tf.maximum(pgd.add(g.sign().mul(2 / 255)), x8.sub(8 / 255)), x8.add(8 / 255))
          .clipByValue(0, 1)
      );
      tf.dispose([g, pgd]);
      pgd = next;
      return pgd.clone();
    },
  };
  const ms = medianMs(
    () => {
      const t = rows[row]();
      t.dataSync();
      t.dispose();
    },
    Number(values.warmup),
    Number(values.repeats),
  );
  const status = Deno.readTextFileSync("/proc/self/status");
  const peakMB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  console.log(JSON.stringify({
    backend: tf.getBackend(),
    params: model.countParams(),
    ms,
    peakMB,
  }));
  tf.dispose([x1, x8, labels, dd, pgd]);
  net.dispose();
}
