import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { ensembleModel, ensembleNet } from "../core/ensemble.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { runPlugin } from "../core/runner.ts";
import { Registry } from "../core/plugin.ts";
import { Lens } from "../lens.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import {
  buildEnsembleMember,
  ensemble,
  mcDropoutPredict,
} from "../plugins/train/marginalize/mod.ts";
import { functionalNet, sequentialNet } from "./_nets.ts";

await initBackend("wasm", { quiet: true });

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => a.sub(b).abs().max());
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

/** A member ending in a softmax fused into its dense layer (no separate softmax layer). */
function fusedSoftmax(seed: number): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 1],
        filters: 3,
        kernelSize: 3,
        activation: "relu",
        name: "conv1",
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({
        units: 5,
        activation: "softmax",
        name: "out",
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

Deno.test("an ensemble's probabilities are the mean of its members', and its logits' softmax gives them", async () => {
  const members = [sequentialNet(1), sequentialNet(2), fusedSoftmax(3)];
  const net = await ensembleNet(members);
  const x = tf.randomUniform([4, 12, 12, 1], 0, 1, "float32", 5);
  const before = tf.memory().numTensors;
  const p = net.probabilities(x);
  const want = tf.tidy(() => tf.addN(members.map((m) => m.predict(x) as tf.Tensor)).div(3));
  assert.ok(await maxDiff(p, want) < 1e-6);
  // The logits are the log of the averaged probabilities.
  const z = net.logits(x);
  const logWant = tf.tidy(() => want.log());
  assert.ok(await maxDiff(z, logWant) < 1e-5);
  tf.dispose([p, want, z, logWant]);
  assert.equal(tf.memory().numTensors, before);
  // Members answer to their paths; each member's layers carry its prefix.
  assert.ok(net.hasLayer("member0/m0_conv2"));
  assert.ok(net.hasLayer("member2/m2_conv1"));
  assert.equal(net.head, "softmax");
  x.dispose();
  net.dispose();
  for (const m of members) m.dispose();
});

Deno.test("an ensemble of functional members saves and loads again through loadNet", async () => {
  const members = [functionalNet(1), functionalNet(2)];
  const model = await ensembleModel(members);
  const dir = await Deno.makeTempDir({ prefix: "convlens_ens_" });
  await saveLayersModel(model, dir, { logits: "logits", probs: "probs" });
  const net = await loadNet(dir);
  const x = tf.randomUniform([3, 10, 10, 3], 0, 1, "float32", 2);
  const want = tf.tidy(() => tf.addN(members.map((m) => m.predict(x) as tf.Tensor)).div(2));
  const got = net.probabilities(x);
  assert.ok(await maxDiff(got, want) < 1e-6);
  tf.dispose([x, want, got]);
  net.dispose();
  model.dispose();
  for (const m of members) m.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saliency, grad-cam, occlusion and class-model run on an ensemble as on any Net", async () => {
  const members = [sequentialNet(4), sequentialNet(5), sequentialNet(6)];
  const net = await ensembleNet(members, {
    input: { height: 12, width: 12, channels: 1, range: [0, 1], mean: [0], std: [1] },
  });
  const pixels = tf.randomUniform([2, 12, 12, 1], 0, 1, "float32", 3) as tf.Tensor4D;
  const images = imagesFromPixels(net, pixels);
  const registry = new Registry(builtinPlugins);
  const before = tf.memory().numTensors;
  const runs: [string, Record<string, unknown>][] = [
    ["saliency", {}],
    ["grad-cam", {}],
    ["grad-cam", { layer: "member1/m1_conv1" }],
    ["occlusion", { size: 4, stride: 4 }],
    ["class-model", { classes: [1], steps: 10, start: "zero" }],
  ];
  for (const [name, params] of runs) {
    const r = await runPlugin(net, images, registry.get(name), params, { registry, seed: 1 });
    try {
      const t = r.tensors.attribution ?? r.tensors.map ?? r.tensors.probability;
      if (name !== "class-model") {
        assert.ok(t, `${name}: tensors ${Object.keys(r.tensors)}`);
        // A map that says something: not flat.
        const range = tf.tidy(() => t.max().sub(t.min()));
        assert.ok((await range.data())[0] > 0, `${name} gave a flat map`);
        range.dispose();
      } else {
        // Gradient ascent on the ensemble's class score raised the ensemble's probability.
        const p0 = tf.tidy(() => net.probabilities(tf.zeros([1, 12, 12, 1])));
        const start = (await p0.data())[1];
        p0.dispose();
        assert.ok(Number(r.figures.minProbability) > start, JSON.stringify(r.figures));
      }
    } finally {
      r.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([images.pixels, images.x]);
  net.dispose();
  for (const m of members) m.dispose();
});

Deno.test("MC-dropout finds the noise layers inside an ensemble's members", async () => {
  const members = [0, 1].map((k) => buildEnsembleMember([8, 8, 1], 3, k, { filters: [4, 4, 4] }));
  const net = await ensembleNet(members);
  const x = tf.randomUniform([3, 8, 8, 1], 0, 1, "float32", 6) as tf.Tensor4D;
  const r = mcDropoutPredict(net, x, { passes: 3, seed: 2 });
  assert.ok(Math.max(...await r.spread.data()) > 0);
  tf.dispose([r.mean, r.spread, r.entropy, r.mutualInformation, x]);
  net.dispose();
  for (const m of members) m.dispose();
});

Deno.test("ensembles refuse members that do not fit together, saying what to give", async () => {
  await assert.rejects(ensembleModel([]), /at least one member/);
  const a = sequentialNet(1), b = functionalNet(1);
  await assert.rejects(ensembleModel([a, b]), /one input shape/);
  const sig = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [12, 12, 1] }),
      tf.layers.dense({ units: 5, activation: "sigmoid" }),
    ],
  });
  await assert.rejects(ensembleModel([a, sig]), /sigmoid/);
  const three = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [12, 12, 1] }), tf.layers.dense({ units: 3 })],
  });
  await assert.rejects(ensembleModel([a, three]), /one set of classes/);
  for (const m of [a, b, sig, three]) m.dispose();
});

Deno.test("the ensemble plugin trains members with fit, and the ensemble it returns gives its probabilities", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1, seed: 4 });
  const before = tf.memory().numTensors;
  const cache = await Deno.makeTempDir({ prefix: "convlens_ens_cache_" });
  const params = { members: 2, epochs: 1, trainCount: 96, count: 48, batchSize: 32, cache };
  const r = await lens.run(ensemble, params);
  try {
    assert.equal(r.figures.members, 2);
    const accs = String(r.figures.memberAccuracies).split(", ").map(Number);
    assert.ok(Math.abs(Number(r.figures.meanMemberAccuracy) - (accs[0] + accs[1]) / 2) < 1e-3);
    assert.ok(r.model, "the result carries the ensemble");
    // The carried model's probabilities on the test digits are the figures' probabilities.
    const net = Net.fromModel(r.model!.model, r.model!.sidecar);
    const digits = await (await lens.data()).batch(Array.from({ length: 48 }, (_, i) => i));
    const p = net.probabilities(digits.x);
    assert.ok(await maxDiff(p, r.tensors.probabilities) < 1e-6);
    tf.dispose([p, digits.x, digits.y]);
    // A second run reuses the cached members and gives the same figures.
    const again = await lens.run(ensemble, params);
    assert.deepEqual(
      { ...again.figures },
      { ...r.figures },
    );
    assert.deepEqual(again.tables[0].rows, r.tables[0].rows);
    assert.match(again.notes.join(" "), /2 of them reused/);
    assert.match(r.notes.join(" "), /0 of them reused/);
    again.dispose();
  } finally {
    r.dispose();
    await Deno.remove(cache, { recursive: true });
  }
  assert.equal(tf.memory().numTensors, before);
  lens.dispose();
});
