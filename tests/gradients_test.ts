import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { gradient, withReluRule } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { noLeak, sequentialNet, tinyNet } from "./_nets.ts";

await tf.setBackend("cpu");

// x = [2, -3]: conv pre-activations [2, -2, -3, 3]; dscore/drelu = [1, 2, -1, -2].
// plain: mask [1,0,0,1] -> [1, 2]; deconv: relu(dy) = [1,2,0,0] -> [-1, 0];
// guided: relu(dy) * mask = [1,0,0,0] -> [1, 0].
const EXPECTED = { plain: [1, 2], deconv: [-1, 0], guided: [1, 0] } as const;
const score: Objective = {
  name: "output",
  output: true,
  perImage: ({ result }) =>
    result.output.reshape([result.output.shape[0], -1]).sum(1) as tf.Tensor1D,
};

for (const fused of [true, false]) {
  for (const rule of ["plain", "deconv", "guided"] as const) {
    Deno.test(`gradient() under the ${rule} rule matches the hand-computed value (${fused ? "fused" : "separate"} ReLU)`, async () => {
      const net = Net.fromModel(tinyNet(fused));
      const x = tf.tensor4d([2, -3], [1, 1, 2, 1]);
      await noLeak(async () => {
        const { grad, value } = gradient(net, x, score, { rule });
        assert.deepEqual(Array.from(await grad.data()), [...EXPECTED[rule]]);
        assert.equal((await value.data())[0], -4);
        tf.dispose([grad, value]);
      });
      x.dispose();
      net.dispose();
    });
  }
}

Deno.test("gradient() with respect to a layer gives the downstream weights", async () => {
  const net = Net.fromModel(tinyNet(true));
  const x = tf.tensor4d([2, -3], [1, 1, 2, 1]);
  const { grad, value } = gradient(net, x, score, { wrt: "conv" });
  assert.deepEqual(grad.shape, [1, 1, 2, 2]);
  assert.deepEqual(Array.from(await grad.data()), [1, 2, -1, -2]);
  // Asked for, the activation it differentiated at comes back too: the conv's
  // pre-activations [2, -2, -3, 3] through its ReLU.
  const before = tf.memory().numTensors;
  const r = gradient(net, x, score, { wrt: "conv", activation: true });
  assert.deepEqual(Array.from(await r.activation!.data()), [2, 0, 0, 3]);
  assert.deepEqual(Array.from(await r.grad.data()), [1, 2, -1, -2]);
  tf.dispose([r.grad, r.value, r.activation!]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([grad, value, x]);
  net.dispose();
});

Deno.test("fused conv and dense layers with ReLU follow the same rule as explicit tf.relu", async () => {
  const model = sequentialNet(3);
  const net = Net.fromModel(model);
  const x = tf.randomUniform([2, 12, 12, 1], 0, 1, "float32", 5);
  const k1 = model.getLayer("conv1").getWeights();
  const k2 = model.getLayer("conv2").getWeights();
  const d = model.getLayer("logits").getWeights();
  // The same net written with explicit ops and tf.relu.
  const manual = (v: tf.Tensor) => {
    let h = tf.relu(tf.conv2d(v as tf.Tensor4D, k1[0] as tf.Tensor4D, 1, "same").add(k1[1]));
    h = tf.maxPool(h as tf.Tensor4D, 2, 2, "valid");
    h = tf.relu(tf.conv2d(h as tf.Tensor4D, k2[0] as tf.Tensor4D, 1, "valid").add(k2[1]));
    const logits = tf.matMul(h.reshape([v.shape[0], -1]), d[0]).add(d[1]);
    return logits.slice([0, 2], [-1, 1]).sum() as tf.Scalar;
  };
  const objective: Objective = {
    name: "logit2",
    logits: true,
    perImage: ({ result }) => result.logits!.slice([0, 2], [-1, 1]).reshape([-1]) as tf.Tensor1D,
  };
  for (const rule of ["plain", "deconv", "guided"] as const) {
    const { grad, value } = gradient(net, x, objective, { rule });
    const ref = withReluRule(rule, () => tf.grad(manual)(x));
    const diff = (await grad.sub(ref).abs().max().data())[0];
    assert.ok(diff < 1e-5, `${rule}: max difference ${diff}`);
    const norm = (await ref.abs().sum().data())[0];
    assert.ok(norm > 0, `${rule}: gradient is not all zero`);
    tf.dispose([grad, value, ref]);
  }
  tf.dispose([x]);
  net.dispose();
});

Deno.test("withReluRule() restores the original ReLU gradient even when the call throws", () => {
  const original = tf.getGradient("Relu").gradFunc;
  assert.throws(() =>
    withReluRule("guided", () => {
      assert.notEqual(tf.getGradient("Relu").gradFunc, original);
      throw new Error("boom");
    }), /boom/);
  assert.equal(tf.getGradient("Relu").gradFunc, original);
  assert.throws(() => withReluRule("nope" as "plain", () => 1), /Unknown ReLU rule "nope"/);
});

Deno.test("guided and deconv gradients differ from plain ones on a real conv net", async () => {
  const net = Net.fromModel(sequentialNet(4));
  const x = tf.randomUniform([1, 12, 12, 1], 0, 1, "float32", 9);
  const obj: Objective = {
    name: "logit1",
    logits: true,
    perImage: ({ result }) => result.logits!.slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D,
  };
  const g = Object.fromEntries(
    (["plain", "deconv", "guided"] as const).map((rule) => [rule, gradient(net, x, obj, { rule })]),
  );
  const d1 = (await g.plain.grad.sub(g.guided.grad).abs().sum().data())[0];
  const d2 = (await g.plain.grad.sub(g.deconv.grad).abs().sum().data())[0];
  assert.ok(d1 > 1e-4 && d2 > 1e-4);
  for (const v of Object.values(g)) tf.dispose([v.grad, v.value]);
  x.dispose();
  net.dispose();
});

Deno.test("gradient with output: false stops at the taps and gives the same gradient", async () => {
  const net = Net.fromModel(sequentialNet(), { logits: "logits", probs: "probs" });
  const x = tf.randomUniform([2, net.input.height, net.input.width, 1], 0, 1, "float32", 4);
  const tapOnly = (output: boolean): Objective => ({
    name: "pool1Energy",
    taps: ["pool1"],
    output,
    perImage: ({ result }) =>
      result.taps.pool1.square().reshape([x.shape[0], -1]).sum(1) as tf.Tensor1D,
  });
  await noLeak(() => {
    for (const wrt of ["input", "conv1"]) {
      const a = gradient(net, x, tapOnly(true), { wrt });
      const b = gradient(net, x, tapOnly(false), { wrt });
      assert.deepEqual(b.grad.arraySync(), a.grad.arraySync(), wrt);
      assert.equal(b.value.arraySync(), a.value.arraySync());
      tf.dispose([a.grad, a.value, b.grad, b.value]);
    }
    // An objective that says it does not read the output cannot read it.
    assert.throws(
      () =>
        gradient(net, x, {
          name: "output",
          perImage: ({ result }) => result.output.sum(1) as tf.Tensor1D,
        }),
      /stopAtTaps/,
    );
  });
  x.dispose();
});

Deno.test("gradient() checks the objective first and differentiates the sum of its per-image values", async () => {
  const net = Net.fromModel(sequentialNet(), { logits: "logits", probs: "probs" });
  const x = tf.randomUniform([3, net.input.height, net.input.width, 1], 0, 1, "float32", 6);
  const logit1: Objective = {
    name: "logit1",
    logits: true,
    perImage: ({ result }) => result.logits!.slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D,
  };
  await noLeak(async () => {
    const { grad, value } = gradient(net, x, logit1);
    // Each image's gradient is its own: the batch's gradient is the stack of the singles'.
    for (let i = 0; i < 3; i++) {
      const xi = x.slice([i], [1]);
      const one = gradient(net, xi, logit1);
      const d = tf.tidy(() => grad.slice([i], [1]).sub(one.grad).abs().max());
      const diff = (await d.data())[0];
      assert.ok(diff < 1e-6, `image ${i}: max difference ${diff}`);
      tf.dispose([xi, d, one.grad, one.value]);
    }
    const logits = tf.tidy(() =>
      net.forward(x, { logits: true }).logits!.slice([0, 1], [-1, 1]).sum()
    );
    assert.ok(Math.abs((await value.data())[0] - (await logits.data())[0]) < 1e-5);
    tf.dispose([grad, value, logits]);
    const check = () => {
      throw new RangeError("does not fit");
    };
    assert.throws(() => gradient(net, x, { ...logit1, check }), /does not fit/);
  });
  x.dispose();
  net.dispose();
});
