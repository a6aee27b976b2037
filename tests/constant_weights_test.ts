/**
 * Weights held constant (`core/folded_layers.ts`) and the lazy batch-norm
 * gradient (`backends/batch_norm_grad.ts`): batch norm folded into the layer
 * before it and input-only gradients give the answers of the plain layers, on
 * the pure-JS backend and on WASM with oneDNN; weight gradients through
 * `Net.forward` stay right; folds follow weight changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { gradient, withReluRule } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { initBackend } from "../backends/mod.ts";
import { registerBatchNormGradient } from "../backends/batch_norm_grad.ts";
import { holdingWeightsConstant, weightsHeldConstant } from "../core/folded_layers.ts";

registerBatchNormGradient();
await tf.setBackend("cpu");

type T = tf.SymbolicTensor;

/**
 * conv (linear) -> BN -> relu; depthwise (linear) -> BN -> relu6; a conv with
 * its own relu; a conv whose output also feeds a branch (not foldable); BN after
 * an add (not foldable); dense -> BN -> logits. Batch-norm statistics are far
 * from 0 and 1 so that a fold with a wrong formula shows.
 */
function bnNet(seed: number): tf.LayersModel {
  let s = seed * 100;
  const init = () => tf.initializers.glorotUniform({ seed: ++s });
  const input = tf.input({ shape: [9, 9, 3] });
  const apply = (l: tf.layers.Layer, x: T | T[]) => l.apply(x) as T;
  const bn = (name: string) => tf.layers.batchNormalization({ name });
  let x = apply(
    tf.layers.conv2d({
      name: "c1",
      filters: 6,
      kernelSize: 3,
      padding: "same",
      kernelInitializer: init(),
    }),
    input,
  );
  x = apply(tf.layers.reLU({ name: "r1" }), apply(bn("bn1"), x));
  let d = apply(
    tf.layers.depthwiseConv2d({
      name: "dw",
      kernelSize: 3,
      depthMultiplier: 2,
      strides: 2,
      padding: "same",
      depthwiseInitializer: init(),
    }),
    x,
  );
  d = apply(tf.layers.reLU({ name: "r2", maxValue: 6 }), apply(bn("bn2"), d));
  const c3 = apply(
    tf.layers.conv2d({
      name: "c3",
      filters: 12,
      kernelSize: 1,
      activation: "relu",
      kernelInitializer: init(),
    }),
    d,
  );
  // c4 feeds both bn4 and the add: its output is needed as is, so no fold.
  const c4 = apply(
    tf.layers.conv2d({
      name: "c4",
      filters: 12,
      kernelSize: 3,
      padding: "same",
      kernelInitializer: init(),
    }),
    c3,
  );
  const sum = apply(tf.layers.add({ name: "add" }), [apply(bn("bn4"), c4), c4]);
  let y = apply(bn("bn5"), sum);
  y = apply(tf.layers.flatten({ name: "flat" }), y);
  y = apply(tf.layers.dense({ name: "fc", units: 8, kernelInitializer: init() }), y);
  y = apply(bn("bn6"), y);
  y = apply(tf.layers.dense({ name: "logits", units: 4, kernelInitializer: init() }), y);
  const model = tf.model({ inputs: input, outputs: y });
  const rng = tf.randomUniform;
  for (const l of model.layers) {
    if (l.getClassName() !== "BatchNormalization") continue;
    const c = l.getWeights()[0].shape[0];
    const stats = [
      rng([c], 0.5, 2, "float32", ++s),
      rng([c], -1, 1, "float32", ++s),
      rng([c], -0.5, 0.5, "float32", ++s),
      rng([c], 0.2, 3, "float32", ++s),
    ];
    l.setWeights(stats);
    tf.dispose(stats);
  }
  return model;
}

const logit1: Objective = {
  name: "logit1",
  logits: true,
  perImage: ({ result }) => result.logits!.slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D,
};

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) {
    assert.ok(
      Math.abs(a[i] - b[i]) <= tol * scale,
      `${what}: element ${i} is ${a[i]}, expected ${b[i]} (scale ${scale})`,
    );
  }
}

/** Kernel names run by `f`, with counts. */
async function kernelsOf(f: () => tf.Tensor): Promise<Record<string, number>> {
  const prof = await tf.profile(() => {
    const r = f();
    r.dataSync();
    return r;
  });
  (prof.result as tf.Tensor).dispose();
  const count: Record<string, number> = {};
  for (const k of prof.kernels) count[k.name] = (count[k.name] ?? 0) + 1;
  return count;
}

Deno.test("the batch-norm gradient equals the gradient of its formula, for every input, rank 4 and 2", () => {
  for (const shape of [[2, 3, 4, 5], [6, 5]]) {
    tf.tidy(() => {
      const c = shape.at(-1)!;
      const x = tf.randomNormal(shape, 0, 2, "float32", 1);
      const w = tf.randomNormal(shape, 0, 1, "float32", 2);
      const mean = tf.randomUniform([c], -1, 1, "float32", 3);
      const variance = tf.randomUniform([c], 0.3, 2, "float32", 4);
      const offset = tf.randomUniform([c], -1, 1, "float32", 5);
      const scale = tf.randomUniform([c], 0.5, 2, "float32", 6);
      // (tfjs 4.22 cannot take any gradient through a batch norm without a
      // scale: it fails saving the missing input. Folded, such a layer works;
      // see the test below.)
      for (const withScale of [true]) {
        const sc = withScale ? scale : undefined;
        const fused = tf.grads((x, m, v, o, s) =>
          tf.batchNorm(x, m, v, o, withScale ? s : undefined, 1e-3).mul(w).sum()
        )([x, mean, variance, offset, scale]);
        const formula = tf.grads((x, m, v, o, s) =>
          x.sub(m).mul(tf.rsqrt(v.add(1e-3))).mul(withScale ? s : 1).add(o).mul(w).sum()
        )([x, mean, variance, offset, scale]);
        ["x", "mean", "variance", "offset", "scale"].forEach((name, i) => {
          if (!sc && name === "scale") return;
          close(fused[i].dataSync(), formula[i].dataSync(), 1e-5, `${shape} d${name}`);
        });
      }
    });
  }
});

Deno.test("the batch-norm gradient is right in training mode (mean and variance functions of x)", () => {
  tf.tidy(() => {
    const x = tf.randomNormal([4, 3, 3, 5], 1, 2, "float32", 7);
    const w = tf.randomNormal([4, 3, 3, 5], 0, 1, "float32", 8);
    const scale = tf.randomUniform([5], 0.5, 2, "float32", 9);
    const offset = tf.randomUniform([5], -1, 1, "float32", 10);
    const f = (useKernel: boolean) =>
      tf.grad((x: tf.Tensor) => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        const y = useKernel
          ? tf.batchNorm(x, mean, variance, offset, scale, 1e-3)
          : x.sub(mean).mul(tf.rsqrt(variance.add(1e-3))).mul(scale).add(offset);
        return y.mul(w).sum();
      })(x);
    close(f(true).dataSync(), f(false).dataSync(), 1e-4, "training-mode dx");
  });
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`Net.forward() with batch norm folded equals the model's own output (${backend})`, async () => {
    await initBackend(backend, { quiet: true });
    const model = bnNet(1);
    const net = Net.fromModel(model);
    const x = tf.randomUniform([3, 9, 9, 3], 0, 1, "float32", 11);
    const before = tf.memory().numTensors;
    const ref = model.predict(x) as tf.Tensor;
    const out = net.forward(x).output;
    close(out.dataSync(), ref.dataSync(), 1e-5, "output");
    // Tapping c1 keeps its own, unfolded output (the batch norm is then run).
    const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer("c1").output });
    const c1 = net.forward(x, { taps: ["c1"], stopAtTaps: true }).taps.c1;
    const c1Ref = sub.predict(x) as tf.Tensor;
    close(c1.dataSync(), c1Ref.dataSync(), 1e-6, "tap c1");
    tf.dispose([ref, out, c1, c1Ref]);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    // Folds: bn1 (into c1), bn2 (into dw) and bn6 (into fc) vanish; bn4 and bn5 run.
    const kernels = await kernelsOf(() => net.forward(x).output);
    assert.equal(kernels.FusedBatchNorm, 2, JSON.stringify(kernels));
    const unfolded = await kernelsOf(() => net.forward(x, { constantWeights: false }).output);
    assert.equal(unfolded.FusedBatchNorm, 5, JSON.stringify(unfolded));
    // r1 (ReLU) and r2 (ReLU6) are fused into c1 and dw: no Relu or clip runs for them.
    assert.equal((unfolded.Relu ?? 0) - (kernels.Relu ?? 0), 2, JSON.stringify(kernels));
    assert.equal((unfolded.ClipByValue ?? 0) - (kernels.ClipByValue ?? 0), 1);
    x.dispose();
    net.dispose();
  });

  for (const rule of ["plain", "guided"] as const) {
    Deno.test(`gradient() with constant weights equals tf.grad through the model, ${rule} rule (${backend})`, async () => {
      await initBackend(backend, { quiet: true });
      const model = bnNet(2);
      const net = Net.fromModel(model);
      const x = tf.randomUniform([2, 9, 9, 3], 0, 1, "float32", 12);
      const before = tf.memory().numTensors;
      const { grad, value } = gradient(net, x, logit1, { rule });
      const ref = withReluRule(
        rule,
        () =>
          tf.tidy(() =>
            tf.grad((v: tf.Tensor) => (model.apply(v) as tf.Tensor).slice([0, 1], [-1, 1]).sum())(x)
          ),
      );
      close(grad.dataSync(), ref.dataSync(), 1e-4, "input gradient");
      tf.dispose([grad, value, ref]);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      // The input gradient computes no weight gradient and no batch norm of the folded pairs.
      const kernels = await kernelsOf(() => {
        const r = gradient(net, x, logit1, { rule });
        r.value.dispose();
        return r.grad;
      });
      assert.equal(kernels.Conv2DBackpropFilter ?? 0, 0, JSON.stringify(kernels));
      assert.equal(kernels.DepthwiseConv2dNativeBackpropFilter ?? 0, 0, JSON.stringify(kernels));
      assert.equal(kernels.FusedBatchNorm, 2, JSON.stringify(kernels));
      x.dispose();
      net.dispose();
    });
  }

  Deno.test(`weight gradients through Net.forward stay right, and folds follow new weights (${backend})`, async () => {
    await initBackend(backend, { quiet: true });
    const model = bnNet(3);
    const net = Net.fromModel(model);
    const x = tf.randomUniform([2, 9, 9, 3], 0, 1, "float32", 13);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (run: () => tf.Tensor) => () => run().square().sum() as tf.Scalar;
    const mine = tf.variableGrads(loss(() => net.forward(x).output), vars);
    const ref = tf.variableGrads(loss(() => model.apply(x) as tf.Tensor), vars);
    assert.equal(Object.keys(mine.grads).length, vars.length, "every weight gets a gradient");
    for (const v of vars) {
      close(mine.grads[v.name].dataSync(), ref.grads[v.name].dataSync(), 1e-4, v.name);
    }
    tf.dispose([mine.value, ref.value, ...Object.values(mine.grads), ...Object.values(ref.grads)]);
    // New batch-norm statistics (as training or setWeights give) reach the fold.
    const before = tf.memory().numTensors;
    const bn1 = model.getLayer("bn1");
    const stats = tf.tidy(() => bn1.getWeights().map((w, i) => (i === 2 ? w.add(0.7) : w.clone())));
    bn1.setWeights(stats);
    const conv = model.getLayer("c1");
    const weights = tf.tidy(() => conv.getWeights().map((w) => w.mul(-1.5)));
    conv.setWeights(weights);
    tf.dispose([...stats, ...weights]);
    const out = net.forward(x).output;
    const want = model.predict(x) as tf.Tensor;
    close(out.dataSync(), want.dataSync(), 1e-5, "after new weights");
    tf.dispose([out, want]);
    assert.equal(tf.memory().numTensors, before, "a refold frees the fold it replaces");
    x.dispose();
    const held = tf.memory().numTensors;
    net.dispose();
    // The model's weights and the three folds (kernel and bias each) are freed.
    assert.ok(held - tf.memory().numTensors >= model.weights.length + 6);
  });
}

Deno.test("gradient() on the MobileNet-style depthwise stack of the zoo matches with and without constant weights", async () => {
  await initBackend("cpu", { quiet: true });
  const model = bnNet(4);
  const net = Net.fromModel(model);
  const x = tf.randomUniform([1, 9, 9, 3], 0, 1, "float32", 14);
  // Gradient with respect to an activation (Grad-CAM's), folded and not.
  const wrt = "r2";
  const a = gradient(net, x, logit1, { wrt });
  const b = tf.tidy(() => {
    const act = net.forward(x, { taps: [wrt], stopAtTaps: true, constantWeights: false }).taps[wrt];
    return tf.grad((v: tf.Tensor) =>
      net.forward(x, { edits: { [wrt]: () => v }, logits: true, constantWeights: false }).logits!
        .slice([0, 1], [-1, 1]).sum()
    )(act);
  });
  close(a.grad.dataSync(), b.dataSync(), 1e-4, "activation gradient");
  tf.dispose([a.grad, a.value, b, x]);
  net.dispose();
});

Deno.test("a batch norm without scale (as Inception's) folds, and the input gradient through it is right", () => {
  const input = tf.input({ shape: [4, 4, 2] });
  let y = tf.layers.conv2d({
    filters: 3,
    kernelSize: 3,
    padding: "same",
    useBias: false,
    kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
  }).apply(input) as T;
  const norm = tf.layers.batchNormalization({ scale: false });
  y = tf.layers.activation({ activation: "tanh" }).apply(norm.apply(y) as T) as T;
  y = tf.layers.flatten().apply(y) as T;
  y = tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) })
    .apply(y) as T;
  const model = tf.model({ inputs: input, outputs: y });
  const stats = [
    tf.tensor1d([0.3, -0.2, 0.1]),
    tf.tensor1d([0.5, -0.4, 0.2]),
    tf.tensor1d([2, 0.5, 1.5]),
  ];
  norm.setWeights(stats);
  const net = Net.fromModel(model);
  const x = tf.randomUniform([1, 4, 4, 2], 0, 1, "float32", 15);
  const { grad, value } = gradient(net, x, logit1);
  // Central differences of logit 1, element by element.
  const base = x.dataSync();
  const h = 1e-2;
  const numeric = Array.from(base, (_, i) => {
    const f = (d: number) =>
      tf.tidy(() => {
        const v = base.slice();
        v[i] += d;
        return (model.predict(
          tf.tensor4d(v, x.shape as number[] as [number, number, number, number]),
        ) as tf.Tensor)
          .dataSync()[1];
      });
    return (f(h) - f(-h)) / (2 * h);
  });
  close(grad.dataSync(), numeric, 2e-3, "input gradient vs central differences");
  tf.dispose([grad, value, x, ...stats]);
  net.dispose();
});

Deno.test("a Net made only to read a model shares one set of folds per model, freed with the model", async () => {
  await initBackend("cpu", { quiet: true });
  const start = tf.memory().numTensors;
  const model = bnNet(5);
  const weights = tf.memory().numTensors - start;
  // Three folds (c1, dw, fc), a kernel and a bias each, however many Nets look.
  for (let i = 0; i < 3; i++) Net.fromModel(model).layers.length;
  assert.equal(tf.memory().numTensors - start, weights + 6);
  model.dispose();
  assert.equal(tf.memory().numTensors, start);
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`held constant, filter gradients are not computed and input gradients do not change (${backend})`, async () => {
    await initBackend(backend, { quiet: true });
    const x = tf.randomNormal([2, 7, 7, 3], 0, 1, "float32", 21);
    const filter = tf.randomNormal([3, 3, 3, 5], 0, 1, "float32", 22);
    const dw = tf.randomNormal([3, 3, 3, 2], 0, 1, "float32", 23);
    const bias = tf.randomNormal([5], 0, 1, "float32", 24);
    // A fused conv (whose tfjs gradient computes filter and bias gradients
    // eagerly) and a depthwise conv, as a GraphModel's nodes run them.
    const f = (v: tf.Tensor, k: tf.Tensor, d: tf.Tensor) =>
      tf.depthwiseConv2d(
        tf.fused.conv2d({
          x: v as tf.Tensor4D,
          filter: k as tf.Tensor4D,
          bias,
          strides: 1,
          pad: "same",
        })
          .slice([0, 0, 0, 0], [-1, -1, -1, 3]),
        d as tf.Tensor4D,
        1,
        "same",
      ).square().sum() as tf.Scalar;
    const grads = () => tf.grads(f)([x, filter, dw]);
    const free = grads();
    const held = holdingWeightsConstant(grads);
    close(held[0].dataSync(), free[0].dataSync(), 1e-6, "input gradient");
    assert.ok(
      tf.tidy(() => free[1].abs().max().dataSync()[0]) > 0.1,
      "a real filter gradient outside",
    );
    assert.equal(tf.tidy(() => held[1].abs().max().dataSync()[0]), 0, "conv filter gradient held");
    assert.equal(
      tf.tidy(() => held[2].abs().max().dataSync()[0]),
      0,
      "depthwise filter gradient held",
    );
    assert.ok(!weightsHeldConstant(), "the scope ends with its call");
    tf.dispose([x, filter, dw, bias, ...free, ...held]);
  });
}

Deno.test("after a training-mode pass moves the batch-norm averages, the folds use the new ones (inference mode)", async () => {
  await initBackend("cpu", { quiet: true });
  const model = bnNet(6);
  const net = Net.fromModel(model);
  const x = tf.randomUniform([4, 9, 9, 3], 0, 1, "float32", 31);
  const first = net.forward(x).output;
  // Training mode normalizes by the batch's own statistics and moves the
  // moving averages (momentum 0.99), as fit does.
  for (let i = 0; i < 3; i++) tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor);
  const after = net.forward(x).output;
  const want = model.predict(x) as tf.Tensor;
  close(after.dataSync(), want.dataSync(), 1e-5, "folded vs the model in inference mode");
  assert.ok(tf.tidy(() => after.sub(first).abs().max().dataSync()[0]) > 1e-4, "the averages moved");
  tf.dispose([x, first, after, want]);
  net.dispose();
});

Deno.test("residual sums that save nothing: three inputs, one of them twice, give tf.grad's input gradient", async () => {
  await initBackend("cpu", { quiet: true });
  const input = tf.input({ shape: [6, 6, 2] });
  const conv = (name: string, s: number) =>
    tf.layers.conv2d({
      name,
      filters: 3,
      kernelSize: 3,
      padding: "same",
      activation: "tanh",
      kernelInitializer: tf.initializers.glorotUniform({ seed: s }),
    });
  const a = conv("a", 1).apply(input) as T;
  const b = conv("b", 2).apply(a) as T;
  const sum = tf.layers.add({ name: "sum" }).apply([a, b, a]) as T;
  const out = tf.layers.dense({ units: 2, name: "logits" }).apply(
    tf.layers.flatten().apply(sum) as T,
  ) as T;
  const model = tf.model({ inputs: input, outputs: out });
  const net = Net.fromModel(model);
  const x = tf.randomUniform([2, 6, 6, 2], -1, 1, "float32", 41);
  const before = tf.memory().numTensors;
  const { grad, value } = gradient(net, x, logit1);
  const ref = tf.tidy(() =>
    tf.grad((v: tf.Tensor) => (model.apply(v) as tf.Tensor).slice([0, 1], [-1, 1]).sum())(x)
  );
  close(grad.dataSync(), ref.dataSync(), 1e-5, "input gradient through a 3-way sum");
  tf.dispose([grad, value, ref]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  net.dispose();
});
