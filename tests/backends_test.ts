/**
 * Cross-backend agreement: forward passes and gradients (plain and guided) of a
 * small conv net on WASM (with the core's gradient kernels) and WebGPU (the
 * software adapter here) agree with the pure-JS CPU backend.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend, probeGpu, resolveBackendName } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { gradient } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { sequentialNet } from "./_nets.ts";

// Tolerances: float32 kernels in a different order of summation.
const FORWARD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

const objective: Objective = {
  name: "logit1",
  logits: true,
  perImage: ({ result }) => result.logits!.slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D,
};

async function compute(backend: string) {
  await initBackend(backend, { quiet: true });
  assert.equal(tf.getBackend(), backend);
  const net = Net.fromModel(sequentialNet(7));
  const x = tf.randomUniform([3, 12, 12, 1], 0, 1, "float32", 11);
  const before = tf.memory().numTensors;
  const out = net.forward(x, { taps: ["conv2"] });
  const plain = gradient(net, x, objective, { rule: "plain" });
  const guided = gradient(net, x, objective, { rule: "guided" });
  // Through a max-pool over tied zeros: every backend must pick the first maximum.
  const wrtLayer = gradient(net, x, objective, { wrt: "conv1" });
  const values = {
    output: await out.output.data(),
    conv2: await out.taps.conv2.data(),
    plain: await plain.grad.data(),
    guided: await guided.grad.data(),
    wrtLayer: await wrtLayer.grad.data(),
  };
  tf.dispose([out.output, out.taps.conv2, plain.grad, plain.value, guided.grad, guided.value]);
  tf.dispose([wrtLayer.grad, wrtLayer.value]);
  const leaked = tf.memory().numTensors - before;
  x.dispose();
  net.dispose();
  return { values, leaked };
}

function maxRel(a: Float32Array | Int32Array | Uint8Array, b: typeof a): number {
  let scale = 1e-6, diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / scale;
}

const reference = await compute("cpu");

for (const backend of ["wasm", "webgpu"]) {
  Deno.test({
    name: `${backend} agrees with cpu on forward passes and plain, guided and layer gradients`,
    ignore: backend === "webgpu" && !(await probeGpu()).present,
    async fn() {
      const got = await compute(backend);
      assert.equal(got.leaked, 0);
      for (const key of Object.keys(reference.values) as (keyof typeof reference.values)[]) {
        const tol = key === "output" || key === "conv2" ? FORWARD_TOL : GRAD_TOL;
        const rel = maxRel(got.values[key], reference.values[key]);
        assert.ok(rel < tol, `${backend} ${key}: relative difference ${rel} >= ${tol}`);
      }
      await tf.setBackend("cpu");
    },
  });
}

Deno.test({
  name:
    "webgpu routes a tied max-pool gradient to the first maximum, as cpu does, and agrees on MNIST saliency",
  ignore: !(await probeGpu()).present,
  async fn() {
    const { loadNet } = await import("../core/load.ts");
    const { heldOutDigits } = await import("../core/datasets.ts");
    const run = async (backend: string) => {
      await initBackend(backend, { quiet: true });
      const x = tf.tensor4d([3, 3, 0, 0, 1, 2, 2, 1, 5, 5, 5, 5, 0, 0, 0, 0], [1, 4, 4, 1]);
      const pool = await tf.grad((v: tf.Tensor) =>
        tf.maxPool(v as tf.Tensor4D, 2, 2, "valid").sum()
      )(x)
        .data();
      const net = await loadNet("models/mnist");
      const d = await heldOutDigits({ count: 4 });
      const objective: Objective = {
        name: "labelLogit",
        logits: true,
        perImage: ({ result }) => result.logits!.mul(tf.oneHot(d.labels, 10)).sum(1) as tf.Tensor1D,
      };
      const g = gradient(net, d.images, objective);
      const saliency = await g.grad.data();
      tf.dispose([x, d.images, g.grad, g.value]);
      net.dispose();
      return { pool, saliency };
    };
    const cpu = await run("cpu");
    const gpu = await run("webgpu");
    assert.deepEqual(Array.from(gpu.pool), Array.from(cpu.pool));
    assert.deepEqual(Array.from(cpu.pool).slice(0, 2), [1, 0]);
    const rel = maxRel(gpu.saliency, cpu.saliency);
    assert.ok(rel < GRAD_TOL, `saliency on webgpu differs from cpu by ${rel}`);
    await tf.setBackend("cpu");
  },
});

Deno.test("initBackend() honours CONVLENS_BACKEND and names bad choices", async () => {
  assert.equal(resolveBackendName("cpu"), "cpu");
  assert.throws(
    () => resolveBackendName("tpu"),
    /Unknown backend "tpu": use one of auto, webgpu, wasm, cpu/,
  );
  Deno.env.set("CONVLENS_BACKEND", "cpu");
  try {
    assert.equal(resolveBackendName(), "cpu");
    assert.equal(await initBackend(undefined, { quiet: true }), "cpu");
  } finally {
    Deno.env.delete("CONVLENS_BACKEND");
  }
  // Without a hardware GPU, auto takes WASM.
  if (!(await probeGpu()).hardware) {
    assert.equal(await initBackend("auto", { quiet: true }), "wasm");
  }
  await tf.setBackend("cpu");
});

Deno.test("first-maximum max-pool gradients for any window and stride equal cpu's, ties included", async () => {
  const { firstMaxPoolGradStrided } = await import("../backends/webgpu_grads.ts");
  const pools: [number, number, "same" | "valid"][] = [
    [3, 2, "same"],
    [3, 2, "valid"],
    [3, 1, "same"],
    [2, 1, "valid"],
    [2, 3, "valid"], // gaps between windows
    [2, 2, "same"],
  ];
  const gpu = (await probeGpu()).present;
  for (const [f, s, pad] of pools) {
    const run = async (backend: string, direct: boolean) => {
      await initBackend(backend, { quiet: true });
      const before = tf.memory().numTensors;
      const out = tf.tidy(() => {
        // Rounded and relu'd: many windows are ties, many all zeros.
        const x = tf.randomNormal([2, 9, 7, 3], 0, 1, "float32", 5).mul(2).round().relu();
        const y = tf.maxPool(x as tf.Tensor4D, f, s, pad);
        const dy = tf.randomUniform(y.shape, 0.5, 1.5, "float32", 6);
        return direct
          ? firstMaxPoolGradStrided(dy as tf.Tensor4D, x as tf.Tensor4D, [f, f], [s, s], pad)
          : tf.grad((v: tf.Tensor) => tf.maxPool(v as tf.Tensor4D, f, s, pad).mul(dy).sum())(x);
      });
      const v = await out.data();
      out.dispose();
      assert.equal(tf.memory().numTensors, before);
      return Array.from(v);
    };
    // Overlapping windows add several dy into one pixel, in another order.
    const close = (got: number[], want: number[], what: string) => {
      const rel = maxRel(Float32Array.from(got), Float32Array.from(want));
      assert.ok(rel < 1e-6, `${what}: relative difference ${rel}`);
    };
    const want = await run("cpu", false);
    close(await run("cpu", true), want, `ops on cpu, pool ${f}/${s} ${pad}`);
    if (gpu) close(await run("webgpu", false), want, `webgpu, pool ${f}/${s} ${pad}`);
  }
  await tf.setBackend("cpu");
});
