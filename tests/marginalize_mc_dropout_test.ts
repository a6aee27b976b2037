import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { Lens } from "../lens.ts";
import { mixSeed } from "../core/random.ts";
import {
  mcDropout,
  mcDropoutPredict,
  stochasticLayers,
} from "../plugins/train/marginalize/mc_dropout.ts";
import { denseDropConnect } from "../plugins/train/marginalize/drop_connect.ts";
import { sequentialNet } from "./_nets.ts";

await initBackend("wasm", { quiet: true });

function noisyModel(rate = 0.5, bn = false): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [4, 4, 1], name: "flatten" }),
      ...(bn ? [tf.layers.batchNormalization({ name: "bn" })] : []),
      denseDropConnect({ units: 8, rate, activation: "relu", initSeed: 1, seed: 7, name: "fc" }),
      tf.layers.dropout({ rate, seed: 9, name: "drop" }),
      tf.layers.dense({
        units: 3,
        name: "logits",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      tf.layers.activation({ activation: "softmax", name: "probs" }),
    ],
  });
}

async function arr(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

Deno.test("mcDropoutPredict averages T training-mode passes whose masks come from (seed, pass, batch, layer)", async () => {
  const model = noisyModel();
  const net = Net.fromModel(model);
  const x = tf.randomUniform([5, 4, 4, 1], 0, 1, "float32", 4) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const r = mcDropoutPredict(net, x, { passes: 6, seed: 11, batchIndex: 2 });
  // By hand: the same passes, one by one.
  const layers = stochasticLayers(model);
  assert.deepEqual(layers.map((l) => l.name), ["fc", "drop"]);
  const samples: number[][][] = [];
  for (let t = 0; t < 6; t++) {
    layers.forEach((l, k) =>
      (l as unknown as { seed: number }).seed = mixSeed(11, t, 2, k) & 0x7fffffff
    );
    const p = model.apply(x, { training: true }) as tf.Tensor2D;
    samples.push(await p.array());
    p.dispose();
  }
  layers.forEach((l, k) => (l as unknown as { seed: number }).seed = [7, 9][k]);
  const mean = await r.mean.array();
  const spread = await arr(r.spread), entropy = await arr(r.entropy);
  const mi = await arr(r.mutualInformation);
  for (let i = 0; i < 5; i++) {
    const m = [0, 1, 2].map((c) => samples.reduce((s, p) => s + p[i][c], 0) / 6);
    m.forEach((v, c) => assert.ok(Math.abs(mean[i][c] - v) < 1e-6));
    const c = m.indexOf(Math.max(...m));
    const sd = Math.sqrt(samples.reduce((s, p) => s + (p[i][c] - m[c]) ** 2, 0) / 6);
    assert.ok(Math.abs(spread[i] - sd) < 1e-4, `spread ${spread[i]} vs ${sd}`);
    const H = (p: number[]) => -p.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
    assert.ok(Math.abs(entropy[i] - H(m)) < 1e-4);
    const meanH = samples.reduce((s, p) => s + H(p[i]), 0) / 6;
    assert.ok(Math.abs(mi[i] - Math.max(0, H(m) - meanH)) < 1e-4);
  }
  // The passes differ (the spread is not zero), and the layers' own seeds are back.
  assert.ok(spread.some((s) => s > 1e-3));
  assert.deepEqual(layers.map((l) => (l as unknown as { seed: number }).seed), [7, 9]);
  tf.dispose([r.mean, r.spread, r.entropy, r.mutualInformation]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  net.dispose();
});

Deno.test("MC-dropout is the same twice under a seed and differs under another", async () => {
  const net = Net.fromModel(noisyModel());
  const x = tf.randomUniform([4, 4, 4, 1], 0, 1, "float32", 1) as tf.Tensor4D;
  const a = mcDropoutPredict(net, x, { passes: 4, seed: 3 });
  const b = mcDropoutPredict(net, x, { passes: 4, seed: 3 });
  const c = mcDropoutPredict(net, x, { passes: 4, seed: 4 });
  assert.deepEqual(await arr(a.mean), await arr(b.mean));
  assert.notDeepEqual(await arr(a.mean), await arr(c.mean));
  for (const r of [a, b, c]) tf.dispose([r.mean, r.spread, r.entropy, r.mutualInformation]);
  x.dispose();
  net.dispose();
});

Deno.test("MC-dropout keeps batch norm in inference mode: with rate 0 every pass is the plain prediction", async () => {
  const model = noisyModel(0, true);
  // Moving statistics far from this batch's: batch-mode normalization would change the output.
  const bn = model.getLayer("bn");
  const [g, b] = bn.getWeights();
  const mm = tf.fill([16], 3), mv = tf.fill([16], 4);
  bn.setWeights([g, b, mm, mv]);
  tf.dispose([mm, mv]);
  const net = Net.fromModel(model);
  const x = tf.randomUniform([6, 4, 4, 1], 0, 1, "float32", 8) as tf.Tensor4D;
  const r = mcDropoutPredict(net, x, { passes: 3, seed: 1 });
  const plain = net.probabilities(x);
  const d = tf.tidy(() => r.mean.sub(plain).abs().max());
  assert.ok((await d.data())[0] < 1e-6);
  assert.ok(Math.max(...await arr(r.spread)) < 1e-6);
  const stats = await arr(bn.getWeights()[2]);
  assert.ok(stats.every((v) => v === 3), "the moving mean moved");
  tf.dispose([r.mean, r.spread, r.entropy, r.mutualInformation, plain, d, x]);
  net.dispose();
});

Deno.test("MC-dropout refuses a model without noise layers, and fewer than 2 passes, saying why", () => {
  const net = Net.fromModel(sequentialNet(1));
  const x = tf.zeros([1, 12, 12, 1]) as tf.Tensor4D;
  assert.throws(() => mcDropoutPredict(net, x), /no Dropout or DropConnect layer/);
  const noisy = Net.fromModel(noisyModel());
  const y = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  assert.throws(() => mcDropoutPredict(noisy, y, { passes: 1 }), /at least 2/);
  tf.dispose([x, y]);
  net.dispose();
  noisy.dispose();
});

Deno.test("the mc-dropout plugin on the MNIST model: the spread is larger on the misclassified digits", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1, seed: 2 });
  const before = tf.memory().numTensors;
  const r = await lens.run(mcDropout, { count: 400, passes: 8 });
  try {
    assert.equal(r.figures.layers, "dropout");
    assert.ok(Number(r.figures.wrong) >= 1);
    assert.ok(Number(r.figures.spreadWrong) > Number(r.figures.spreadCorrect));
    assert.ok(Number(r.figures.accuracyMc) > 0.9);
    assert.deepEqual(r.tensors.mean.shape, [400, 10]);
  } finally {
    r.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  lens.dispose();
});
