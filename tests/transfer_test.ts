/**
 * Transfer learning: layer features as a data source, linear probes, the
 * Crammer-Singer hinge, freezing with batch norm in inference mode, the
 * nested save/load round trip explained by Part-1 plugins, and the advisor.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { tensorSource } from "../core/data/source.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { runPlugin } from "../core/runner.ts";
import type { AnyPlugin } from "../core/plugin.ts";
import { saliency } from "../plugins/attribute/saliency.ts";
import { gradCam } from "../plugins/attribute/grad_cam.ts";
import {
  adaptiveAvgPool,
  adviseTransfer,
  batchNormWarnings,
  classSubset,
  drawPerClass,
  fineTune,
  freezeAllButLast,
  hingeLoss,
  keepFrozenBatchNormInInference,
  lastLayersWithWeights,
  layerFeatures,
  measuredSimilarity,
  probeAccuracy,
  probeEnsembleAccuracy,
  probeEveryLayer,
  setHeadFromProbe,
  trainProbe,
  transferModel,
} from "../plugins/train/transfer/mod.ts";
import type { LinearProbe } from "../plugins/train/transfer/probes.ts";

await tf.setBackend("cpu");

/** A small base with a batch norm in its lower part, as a pretrained net would have one. */
function smallBase(seed = 1): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  return tf.sequential({
    name: "pre",
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 4,
        kernelSize: 3,
        name: "conv1",
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tf.layers.batchNormalization({ name: "bn1" }),
      tf.layers.conv2d({
        filters: 4,
        kernelSize: 3,
        name: "conv2",
        activation: "relu",
        kernelInitializer: init(2),
      }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 6, name: "fc1", activation: "relu", kernelInitializer: init(3) }),
    ],
  });
}

function images(n: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([n, 8, 8, 1], 0, 1, "float32", seed) as tf.Tensor4D;
}

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Naive adaptive average pooling, loop by loop. */
function naivePool(x: number[][][], gh: number, gw: number): number[][][] {
  const h = x.length, w = x[0].length, c = x[0][0].length;
  const out: number[][][] = [];
  for (let i = 0; i < gh; i++) {
    const row: number[][] = [];
    for (let j = 0; j < gw; j++) {
      const r0 = Math.floor(i * h / gh), r1 = Math.ceil((i + 1) * h / gh);
      const c0 = Math.floor(j * w / gw), c1 = Math.ceil((j + 1) * w / gw);
      const cell = new Array(c).fill(0);
      for (let a = r0; a < r1; a++) {
        for (let b = c0; b < c1; b++) for (let k = 0; k < c; k++) cell[k] += x[a][b][k];
      }
      row.push(cell.map((v) => v / ((r1 - r0) * (c1 - c0))));
    }
    out.push(row);
  }
  return out;
}

Deno.test("adaptiveAvgPool() matches a naive loop on uneven windows", async () => {
  const x = tf.randomNormal([2, 7, 5, 3], 0, 1, "float32", 4) as tf.Tensor4D;
  const got = adaptiveAvgPool(x, 3, 2);
  const arr = await x.array();
  const want = arr.map((img) => naivePool(img, 3, 2));
  const g = await got.array();
  for (let n = 0; n < 2; n++) {
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 3; k++) assert.ok(Math.abs(g[n][i][j][k] - want[n][i][j][k]) < 1e-5);
      }
    }
  }
  assert.throws(() => adaptiveAvgPool(x, 8, 1), /does not fit a 7x5 map/);
  tf.dispose([x, got]);
});

Deno.test("layerFeatures() equals the taps computed directly, nested layers included", async () => {
  const model = transferModel(smallBase(), 3);
  const net = Net.fromModel(model);
  const x = images(10, 2);
  const labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];
  const data = tensorSource(x, labels);
  const before = tf.memory().numTensors;
  const feats = await layerFeatures(net, data, {
    layers: ["base/conv2", "base/fc1", "input"],
    pool: "flatten",
    batchSize: 3,
  });
  const gap = await layerFeatures(net, data, { layers: ["base/conv2"], pool: "gap" });
  assert.equal(tf.memory().numTensors, before, "features hold no tensors");
  const { taps } = net.forward(x, { taps: ["base/conv2", "base/fc1"], stopAtTaps: true });
  const conv2 = feats.get("base/conv2")!;
  assert.deepEqual(conv2.shape, [4, 4, 4]);
  assert.deepEqual(feats.get("base/fc1")!.shape, [1, 1, 6]);
  assert.equal(conv2.labelOf(4), 1);
  const all = Array.from({ length: 10 }, (_, i) => i);
  const b = await conv2.batch(all);
  assert.deepEqual(await values(b.y), labels);
  const d = tf.tidy(() => b.x.sub(taps["base/conv2"]).abs().max());
  assert.ok((await values(d))[0] < 1e-6);
  const fc = await feats.get("base/fc1")!.batch(all);
  const d2 = tf.tidy(() => fc.x.reshape([10, 6]).sub(taps["base/fc1"]).abs().max());
  assert.ok((await values(d2))[0] < 1e-6);
  const g = await gap.get("base/conv2")!.batch(all);
  const d3 = tf.tidy(() => g.x.reshape([10, 4]).sub(taps["base/conv2"].mean([1, 2])).abs().max());
  assert.ok((await values(d3))[0] < 1e-6);
  const px = await feats.get("input")!.batch([3]);
  const d4 = tf.tidy(() => px.x.sub(x.slice([3], [1])).abs().max());
  assert.ok((await values(d4))[0] < 1e-6);
  tf.dispose([b.x, b.y, fc.x, fc.y, g.x, g.y, px.x, px.y, d, d2, d3, d4, ...Object.values(taps)]);
  await assert.rejects(
    layerFeatures(net, data, { layers: ["base/nope"] }),
    /Unknown layer "base\/nope".*use one of/,
  );
  model.dispose();
  x.dispose();
});

/** Two Gaussian clusters per class in `d` dimensions, linearly separable by construction. */
function clusters(n: number, d: number, k: number, seed: number) {
  return tf.tidy(() => {
    const y = Array.from({ length: n }, (_, i) => i % k);
    const centers = tf.randomNormal([k, d], 0, 3, "float32", seed);
    const x = tf.gather(centers, tf.tensor1d(y, "int32"))
      .add(tf.randomNormal([n, d], 0, 0.3, "float32", seed + 1))
      .reshape([n, 1, 1, d]) as tf.Tensor4D;
    return { x, y };
  });
}

Deno.test("probes reach ~100% on separable features and ~chance on shuffled labels", async () => {
  const before = tf.memory().numTensors;
  const k = 4;
  const tr = clusters(200, 16, k, 5), te = clusters(200, 16, k, 5);
  // The same centers (same seed), fresh noise for the test set.
  const teX = tf.tidy(() =>
    te.x.add(tf.randomNormal(te.x.shape, 0, 0.1, "float32", 9)) as tf.Tensor4D
  );
  const train = tensorSource(tr.x, tr.y), test = tensorSource(teX, te.y);
  for (const kind of ["softmax", "svm"] as const) {
    const probe = await trainProbe(train, { kind, steps: 150 });
    assert.ok(probe.trainAccuracy >= 0.99, `${kind} train ${probe.trainAccuracy}`);
    assert.ok((await probeAccuracy(probe, test)) >= 0.99, kind);
  }
  // Shuffled labels carry no signal: held-out accuracy near 1/k.
  const noise = tf.randomNormal([400, 1, 1, 16], 0, 1, "float32", 11) as tf.Tensor4D;
  const shuffled = Array.from({ length: 400 }, (_, i) => (i * 7 + (i >> 3)) % k);
  const all = tensorSource(noise, shuffled);
  const half = (lo: number) => ({
    ...all,
    size: 200,
    labelOf: (i: number) => all.labelOf(lo + i),
    batch: (ix: readonly number[]) => all.batch(ix.map((i) => lo + i)),
  });
  const p = await trainProbe(half(0), { steps: 150 });
  const chance = await probeAccuracy(p, half(200));
  assert.ok(chance > 0.1 && chance < 0.42, `shuffled labels gave ${chance}`);
  tf.dispose([tr.x, te.x, teX, noise]);
  assert.equal(tf.memory().numTensors, before, "probes leak no tensors");
});

Deno.test("hingeLoss() is Crammer-Singer with its hand-computed subgradient", async () => {
  // Example 0: true class 0, s = [1, 2, 0.5]: margin term 1 + 2 - 1 = 2, the
  // strongest wrong class is 1, so d/ds = [-1, +1, 0] / n.
  // Example 1: true class 2, s = [0, 0.2, 3]: 1 + 0.2 - 3 < 0, no loss, no gradient.
  const s = tf.tensor2d([[1, 2, 0.5], [0, 0.2, 3]]);
  const y = tf.tensor1d([0, 2], "int32");
  const loss = hingeLoss(s, y);
  assert.ok(Math.abs((await values(loss))[0] - 1) < 1e-6);
  const g = tf.grad((t: tf.Tensor) => hingeLoss(t as tf.Tensor2D, y))(s);
  assert.deepEqual(await values(g), [-0.5, 0.5, 0, 0, 0, 0]);
  tf.dispose([s, y, loss, g]);
});

Deno.test("probeEveryLayer() names a row per layer and the setHeadFromProbe fold is exact", async () => {
  const model = transferModel(smallBase(), 2);
  const net = Net.fromModel(model);
  const x = images(24, 3);
  const data = tensorSource(x, Array.from({ length: 24 }, (_, i) => i % 2));
  const feats = await layerFeatures(net, data, { layers: ["input", "base/conv1", "base/fc1"] });
  const rows = await probeEveryLayer(feats, feats, { steps: 20 });
  assert.deepEqual(rows.map((r) => r.layer), ["input", "base/conv1", "base/fc1"]);
  // The head set from a probe on fc1 features scores exactly as the probe does.
  const probe = await trainProbe(feats.get("base/fc1")!, { steps: 30 });
  setHeadFromProbe(model, probe);
  const logits = net.logits(x);
  const { x: fx } = await feats.get("base/fc1")!.batch(Array.from({ length: 24 }, (_, i) => i));
  const { probeScores } = await import("../plugins/train/transfer/probes.ts");
  const scores = probeScores(probe, fx.reshape([24, 6]));
  const d = tf.tidy(() => logits.sub(scores).abs().max());
  assert.ok((await values(d))[0] < 1e-4);
  tf.dispose([logits, fx, scores, d]);
  model.dispose();
  x.dispose();
});

Deno.test("probeEnsembleAccuracy() averages the probes' probabilities: two 2/3 probes vote 3/3", async () => {
  // scores (x, -x): P(class 0) = sigmoid(2x). Layer a is wrong on example 2 (x = 0.2:
  // P0 = 0.60), layer b on example 0 (x = -0.2: P0 = 0.40); each is sure where the
  // other errs (x = +-3: 0.9975 / 0.0025), so the mean is right on all three.
  const probe: LinearProbe = {
    kind: "softmax",
    dims: 1,
    classes: 2,
    mean: Float32Array.of(0),
    std: Float32Array.of(1),
    weights: Float32Array.of(1, -1),
    bias: Float32Array.of(0, 0),
    trainAccuracy: 1,
    loss: 0,
  };
  const xa = tf.tensor4d([3, 3, 0.2], [3, 1, 1, 1]), xb = tf.tensor4d([-0.2, 3, -3], [3, 1, 1, 1]);
  const a = tensorSource(xa, [0, 0, 1]), b = tensorSource(xb, [0, 0, 1]);
  const before = tf.memory().numTensors;
  assert.equal(await probeAccuracy(probe, a), 2 / 3);
  assert.equal(await probeAccuracy(probe, b), 2 / 3);
  assert.equal(await probeEnsembleAccuracy([probe, probe], [a, b]), 1);
  // One probe alone votes as probeAccuracy does.
  assert.equal(await probeEnsembleAccuracy([probe], [a]), 2 / 3);
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  await assert.rejects(
    () => probeEnsembleAccuracy([probe], [a, b]),
    /one feature source per probe/,
  );
  const short = xa.slice(0, 2) as tf.Tensor4D;
  await assert.rejects(
    () => probeEnsembleAccuracy([probe, probe], [a, tensorSource(short, [0, 0])]),
    /different numbers of examples/,
  );
  tf.dispose([xa, xb, short]);
});

Deno.test("freezeAllButLast() freezes: frozen weights and batch-norm statistics stay bit-identical", async () => {
  const x = images(32, 6);
  const data = tensorSource(x, Array.from({ length: 32 }, (_, i) => i % 3));
  const model = transferModel(smallBase(), 3);
  const base = model.getLayer("base") as tf.LayersModel;
  const frozenNames = ["conv1", "bn1"];
  const snapshot = async () =>
    await Promise.all(
      frozenNames.flatMap((n) => base.getLayer(n).getWeights()).map((w) => values(w)),
    );
  const before = await snapshot();
  const fc1Before = await values(base.getLayer("fc1").getWeights()[0]);
  const warnings: string[] = [];
  const tensors = tf.memory().numTensors;
  const result = await fineTune(model, data, {
    trainLast: lastLayersWithWeights(model, 2),
    epochs: 2,
    batchSize: 8,
    onWarning: (w) => warnings.push(w),
  });
  assert.equal(tf.memory().numTensors, tensors, "fineTune leaks no tensors");
  assert.deepEqual(result.plan.trainable, ["conv2", "flatten", "fc1"]);
  assert.deepEqual(result.plan.frozen, ["conv1", "bn1"]);
  assert.deepEqual(result.plan.batchNormInInference, ["base/bn1"]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(await snapshot(), before, "frozen weights and moving statistics unchanged");
  assert.notDeepEqual(await values(base.getLayer("fc1").getWeights()[0]), fc1Before);
  model.dispose();

  // Control: tfjs's default (frozen batch norm left in training mode) moves the
  // statistics, and the pitfall is named before training.
  const naive = transferModel(smallBase(), 3);
  const nbase = naive.getLayer("base") as tf.LayersModel;
  const stats0 = await values(nbase.getLayer("bn1").getWeights()[2]);
  const seen: string[] = [];
  await fineTune(naive, data, {
    trainLast: 3,
    epochs: 1,
    batchSize: 8,
    batchNorm: "train",
    onWarning: (w) => seen.push(w),
  });
  assert.match(seen.join(" "), /"base\/bn1" is frozen but would still update its moving mean/);
  assert.notDeepEqual(await values(nbase.getLayer("bn1").getWeights()[2]), stats0);
  naive.dispose();
  x.dispose();
});

Deno.test("freezing errors are clear: N beyond the layer count, unknown cut layer, no base", () => {
  const model = transferModel(smallBase(), 3);
  assert.throws(() => freezeAllButLast(model, 6), /the base has 5 layers.*give 0 to 5/);
  assert.throws(() => lastLayersWithWeights(model, 4), /the base has 3 \(conv1, conv2, fc1\)/);
  assert.throws(() => transferModel(smallBase(2), 3, { cutAt: "conv9" }), /Unknown layer "conv9"/);
  const plain = smallBase(3);
  assert.throws(() => freezeAllButLast(plain, 1), /no nested model "base"/);
  assert.throws(() => transferModel(smallBase(4), 1), /classes 1 is invalid/);
  model.dispose();
  plain.dispose();
});

Deno.test("a fine-tuned model saves nested, loads again with identical predictions, and plugins explain it", async () => {
  const x = images(16, 8);
  const data = tensorSource(x, Array.from({ length: 16 }, (_, i) => i % 3));
  const model = transferModel(smallBase(), 3);
  await fineTune(model, data, { trainLast: 2, epochs: 1, batchSize: 8 });
  const dir = await Deno.makeTempDir({ prefix: "convlens_transfer_" });
  await saveLayersModel(model, dir, { logits: "logits", probs: "probs" });
  const net = await loadNet(dir);
  try {
    assert.equal(net.layer("base/conv2").type, "Conv2D");
    const want = model.predict(x) as tf.Tensor;
    const got = net.probabilities(x);
    assert.deepEqual(await values(got), await values(want));
    tf.dispose([want, got]);
    // The frozen layers are still frozen after loading; their batch norm would
    // update under fit until switched to inference mode again.
    const loaded = net.model as tf.LayersModel;
    assert.equal(batchNormWarnings(loaded).length, 1);
    keepFrozenBatchNormInInference(loaded);
    assert.deepEqual(batchNormWarnings(loaded), []);
    const imgs = imagesFromPixels(net, x.slice([0], [2]) as tf.Tensor4D);
    const before = tf.memory().numTensors;
    const runs: [AnyPlugin, Record<string, unknown>][] = [
      [saliency, {}],
      [gradCam, {}],
      [gradCam, { layer: "base/conv2" }],
    ];
    for (const [plugin, params] of runs) {
      const r = await runPlugin(net, imgs, plugin, params);
      const map = r.tensors.attribution ?? r.tensors.cam ?? Object.values(r.tensors)[0];
      assert.ok(map, `${plugin.name} gives a map`);
      const peak = tf.tidy(() => map.abs().max());
      assert.ok((await values(peak))[0] > 0, `${plugin.name} ${JSON.stringify(params)}`);
      peak.dispose();
      r.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "plugins leak no tensors");
    tf.dispose([imgs.pixels, imgs.x]);
  } finally {
    net.dispose();
    model.dispose();
    x.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adviseTransfer() names the lecture's four quadrants", () => {
  assert.equal(adviseTransfer({ perClass: 10, similarity: 1 }).strategy, "linear-top");
  assert.equal(adviseTransfer({ perClass: 1000, similarity: 0.99 }).strategy, "fine-tune-few");
  const trouble = adviseTransfer({ perClass: 10, similarity: 0.8 });
  assert.equal(trouble.strategy, "stages");
  assert.match(trouble.reason, /you're in trouble/);
  assert.equal(adviseTransfer({ perClass: 1000, similarity: 0.8 }).strategy, "fine-tune-many");
  // The thresholds are the boundaries.
  assert.equal(adviseTransfer({ perClass: 500, similarity: 0.97 }).strategy, "fine-tune-few");
  assert.equal(adviseTransfer({ perClass: 499, similarity: 0.969 }).strategy, "stages");
  assert.throws(() => adviseTransfer({ perClass: 10, similarity: 1.5 }), /similarity 1.5/);
  assert.equal(measuredSimilarity(0.8, [0.5, 0.8]), 1);
  assert.ok(Math.abs(measuredSimilarity(0.6, [0.8, 0.6]) - 0.75) < 1e-12);
  assert.throws(() => measuredSimilarity(0.6, []), /Give probe accuracies/);
});

Deno.test("classSubset() renumbers labels and drawPerClass() draws k per class under a seed", async () => {
  const x = tf.tidy(() => tf.range(0, 40).reshape([40, 1, 1, 1])) as tf.Tensor4D;
  const all = tensorSource(x, Array.from({ length: 40 }, (_, i) => i % 10));
  const top = classSubset(all, [7, 5]);
  assert.equal(top.size, 8);
  assert.deepEqual(top.classes, ["7", "5"]);
  const b = await top.batch([0, 1]);
  assert.deepEqual(await values(b.x), [5, 7]);
  assert.deepEqual(await values(b.y), [1, 0]);
  const a = drawPerClass(top, 3, 1), c = drawPerClass(top, 3, 2);
  assert.equal(a.train.length, 6);
  assert.equal(a.rest.length, 2);
  assert.deepEqual(drawPerClass(top, 3, 1), a);
  assert.notDeepEqual(a.train, c.train);
  assert.throws(() => classSubset(all, [3, 3]), /give distinct indices from 0 to 9/);
  tf.dispose([x, b.x, b.y]);
});

Deno.test("the transfer plugin names bad lists clearly before it reads any data", async () => {
  const { chosenStrategies, transferTable } = await import("../plugins/train/transfer/mod.ts");
  assert.deepEqual(chosenStrategies("stages, scratch"), ["scratch", "stages"]);
  assert.equal(chosenStrategies("all").length, 5);
  assert.throws(() => chosenStrategies("scratch,nope"), /Unknown strategy "nope"/);
  const model = smallBase();
  const net = Net.fromModel(model);
  const imgs = imagesFromPixels(net, images(1, 1));
  await assert.rejects(
    runPlugin(net, imgs, transferTable, { perClass: [2, 3], steps: [1] }),
    /one --steps entry per --perClass entry/,
  );
  await assert.rejects(
    runPlugin(net, imgs, transferTable, { perClass: [1], steps: [1] }),
    /at least 2/,
  );
  await assert.rejects(
    runPlugin(net, imgs, transferTable, { perClass: [2], steps: [1], learningRate: [0.01, -1] }),
    /--learningRate takes one or more rates > 0, got 0.01,-1/,
  );
  await assert.rejects(
    runPlugin(net, imgs, transferTable, { perClass: [2], steps: [1], fineTuneRate: [] }),
    /--fineTuneRate takes one or more rates > 0, got none/,
  );
  tf.dispose([imgs.pixels, imgs.x]);
  model.dispose();
});
