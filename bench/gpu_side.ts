/**
 * The workloads of `workloads.ts` timed on the WebGPU backend with asynchronous
 * reads (a synchronous read from a GPU stalls the queue and measures the stall).
 * Prints one JSON object: the adapter, and median milliseconds per workload.
 *
 * Usage: deno run -A bench/gpu_side.ts [--repeats 10] [--backend webgpu]
 * (compiled for a GPU machine by `bench/gpu_build.sh`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend, probeGpu } from "../core/backend.ts";
import { mnistNet, vggNet } from "./workloads.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "10" },
    backend: { type: "string", default: "webgpu" },
    only: { type: "string" },
  },
});
const gpu = await probeGpu();
const backend = await initBackend(values.backend, { quiet: true });
const vgg = vggNet();
const mnist = mnistNet();
const x1 = tf.randomUniform([1, 64, 64, 3], 0, 1, "float32", 1);
const x16 = tf.randomUniform([16, 64, 64, 3], 0, 1, "float32", 2);
const x64 = tf.randomUniform([64, 64, 64, 3], 0, 1, "float32", 3);
const m64 = tf.randomUniform([64, 28, 28, 1], 0, 1, "float32", 4);
const labels = tf.tidy(() =>
  tf.oneHot(tf.randomUniform([64], 0, 10, "int32", 5) as tf.Tensor1D, 10)
);
const optimizer = tf.train.sgd(0.01);

const work: Record<string, () => tf.Tensor> = {
  "forward b1": () => vgg.predict(x1) as tf.Tensor,
  "forward b64": () => vgg.predict(x64) as tf.Tensor,
  "input grad b1": () =>
    tf.tidy(() =>
      tf.grad((v: tf.Tensor) => (vgg.apply(v) as tf.Tensor).slice([0, 0], [-1, 1]).sum())(x1)
    ),
  "input grad b16": () =>
    tf.tidy(() =>
      tf.grad((v: tf.Tensor) => (vgg.apply(v) as tf.Tensor).slice([0, 0], [-1, 1]).sum())(x16)
    ),
  "train step b64": () =>
    optimizer.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(labels, mnist.apply(m64, { training: true }) as tf.Tensor),
      true,
    )!,
};

const result: Record<string, number | string> = {};
for (const [name, fn] of Object.entries(work)) {
  if (values.only && !values.only.split(",").includes(name)) continue;
  try {
    for (let i = 0; i < 2; i++) {
      const t = fn();
      await t.data();
      t.dispose();
    }
    const times: number[] = [];
    for (let i = 0; i < Number(values.repeats); i++) {
      const t0 = performance.now();
      const t = fn();
      await t.data();
      times.push(performance.now() - t0);
      t.dispose();
    }
    times.sort((a, b) => a - b);
    result[name] = times[times.length >> 1];
  } catch (err) {
    result[name] = `error: ${(err as Error).message.split("\n")[0]}`;
  }
}
console.log(JSON.stringify({ backend, adapter: gpu.description, hardware: gpu.hardware, result }));
