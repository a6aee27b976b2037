import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { tensorSource } from "../core/data/source.ts";
import { fit } from "../core/train/fit.ts";
import {
  conv2dDropConnect,
  DenseDropConnect,
  denseDropConnect,
} from "../plugins/train/marginalize/drop_connect.ts";

await initBackend("wasm", { quiet: true });

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => a.sub(b).abs().max());
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

// getWeights() gives the layers' own variables: they are not disposed of here.

Deno.test("DenseDropConnect at inference is the dense layer of its weights, exactly", async () => {
  const layer = denseDropConnect({ units: 5, rate: 0.5, seed: 3, activation: "relu", initSeed: 1 });
  const x = tf.randomNormal([7, 6], 0, 1, "float32", 2);
  (layer.apply(x) as tf.Tensor).dispose(); // builds the layer: its weights are made once
  const before = tf.memory().numTensors;
  const y = layer.apply(x) as tf.Tensor;
  const [w, b] = layer.getWeights();
  const want = tf.tidy(() => tf.relu(tf.matMul(x, w).add(b)));
  assert.equal(await maxDiff(y, want), 0);
  tf.dispose([y, want]);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  layer.dispose();
});

Deno.test("DenseDropConnect in training masks weights with the mask its seed draws, a mask per example", async () => {
  const layer = denseDropConnect({ units: 4, rate: 0.3, seed: 11, initSeed: 2 });
  const x = tf.randomNormal([3, 5], 0, 1, "float32", 4);
  const y = layer.apply(x, { training: true }) as tf.Tensor;
  const [w, b] = layer.getWeights();
  const want = tf.tidy(() => {
    const m = tf.randomUniform([3, 5, 4], 0, 1, "float32", 11).greaterEqual(0.3).toFloat()
      .div(0.7);
    const rows = [0, 1, 2].map((i) =>
      x.slice([i, 0], [1, -1]).matMul(w.mul(m.slice([i, 0, 0], [1, -1, -1]).squeeze([0])))
    );
    return tf.concat(rows).add(b);
  });
  assert.ok(await maxDiff(y, want) < 1e-5);
  tf.dispose([x, y, want]);
  layer.dispose();
});

Deno.test("DenseDropConnect drops each weight on its own: an output takes the four values of two inputs' masks", async () => {
  // Input e1 + e2 for 200 examples: unit j gives (W1j M1j + W2j M2j) / (1 - p). Dropping
  // activations would give only 0 and (W1j + W2j) / (1 - p) (input dropout: also W1j/q, W2j/q
  // but the same for every unit); dropping weights gives all four, different per unit.
  const p = 0.5, q = 1 - p;
  const layer = denseDropConnect({ units: 3, rate: p, seed: 5, useBias: false, initSeed: 9 });
  const x = tf.tidy(() => tf.tile(tf.tensor2d([[1, 1, 0]]), [200, 1]));
  const y = layer.apply(x, { training: true }) as tf.Tensor2D;
  const [w] = layer.getWeights();
  const W = await w.array() as number[][];
  const Y = await y.array();
  const patterns = new Set<string>();
  for (let j = 0; j < 3; j++) {
    const expected = [0, W[0][j] / q, W[1][j] / q, (W[0][j] + W[1][j]) / q];
    const seen = new Set<number>();
    for (const row of Y) {
      const k = expected.findIndex((e) => Math.abs(e - row[j]) < 1e-5);
      assert.ok(k >= 0, `unit ${j} gave ${row[j]}, not one of ${expected}`);
      seen.add(k);
    }
    assert.equal(seen.size, 4, `unit ${j} took only the values ${[...seen]}`);
  }
  // Units are masked independently: the rows' patterns of kept input-1 weights vary across units.
  for (const row of Y) {
    patterns.add(row.map((v, j) => Math.abs(v) < 1e-7 ? 0 : Math.round(v / W[0][j] * q)).join());
  }
  assert.ok(patterns.size > 4);
  tf.dispose([x, y]);
  layer.dispose();
});

Deno.test("DenseDropConnect's masked weights average to the mean weights (the inference rule)", async () => {
  const layer = denseDropConnect({ units: 2, rate: 0.4, seed: 8, initSeed: 3 });
  const one = tf.randomNormal([1, 4], 0, 1, "float32", 6);
  const x = tf.tidy(() => tf.tile(one, [4000, 1]));
  const train = layer.apply(x, { training: true }) as tf.Tensor;
  const test = layer.apply(one) as tf.Tensor;
  const mean = tf.tidy(() => train.mean(0, true));
  assert.ok(await maxDiff(mean, test) < 0.06, `${await mean.data()} vs ${await test.data()}`);
  tf.dispose([one, x, train, test, mean]);
  layer.dispose();
});

Deno.test("Conv2DDropConnect: the mean kernel at inference, one masked kernel per batch in training", async () => {
  const layer = conv2dDropConnect({
    filters: 3,
    kernelSize: 3,
    padding: "same",
    rate: 0.25,
    seed: 21,
    initSeed: 4,
  });
  const x = tf.randomNormal([2, 6, 6, 2], 0, 1, "float32", 1) as tf.Tensor4D;
  const test = layer.apply(x) as tf.Tensor;
  const train = layer.apply(x, { training: true }) as tf.Tensor;
  const [k, b] = layer.getWeights() as [tf.Tensor4D, tf.Tensor];
  const wantTest = tf.tidy(() => tf.conv2d(x, k, 1, "same").add(b));
  const wantTrain = tf.tidy(() => {
    const m = tf.randomUniform(k.shape, 0, 1, "float32", 21).greaterEqual(0.25).toFloat().div(0.75);
    return tf.conv2d(x, k.mul(m) as tf.Tensor4D, 1, "same").add(b);
  });
  assert.equal(await maxDiff(test, wantTest), 0);
  assert.ok(await maxDiff(train, wantTrain) < 1e-5);
  assert.ok(await maxDiff(train, test) > 1e-3);
  tf.dispose([x, test, train, wantTest, wantTrain]);
  layer.dispose();
});

function dropConnectModel(): tf.Sequential {
  return tf.sequential({
    layers: [
      conv2dDropConnect({
        inputShape: [6, 6, 1],
        filters: 4,
        kernelSize: 3,
        rate: 0.2,
        seed: 1,
        activation: "relu",
        initSeed: 1,
        name: "cdc",
      }),
      tf.layers.flatten({ name: "flatten" }),
      denseDropConnect({ units: 3, rate: 0.5, seed: 2, initSeed: 2, name: "ddc" }),
      tf.layers.activation({ activation: "softmax", name: "probs" }),
    ],
  });
}

Deno.test("a model with DropConnect layers saves and loads again through loadNet, same config and outputs", async () => {
  const model = dropConnectModel();
  const dir = await Deno.makeTempDir({ prefix: "convlens_dc_" });
  await saveLayersModel(model, dir, { name: "dc" });
  const net = await loadNet(dir);
  const loaded = net.model as tf.LayersModel;
  const layer = loaded.getLayer("ddc") as DenseDropConnect;
  assert.ok(layer instanceof DenseDropConnect);
  assert.equal(layer.rate, 0.5);
  assert.equal(layer.masks, "example");
  assert.equal(loaded.getLayer("cdc").getClassName(), "Conv2DDropConnect");
  const x = tf.randomUniform([4, 6, 6, 1], 0, 1, "float32", 3);
  const a = model.predict(x) as tf.Tensor, b = loaded.predict(x) as tf.Tensor;
  assert.equal(await maxDiff(a, b), 0);
  // Training-mode outputs match too: the seeds travel with the config.
  const ta = model.apply(x, { training: true }) as tf.Tensor;
  const tb = loaded.apply(x, { training: true }) as tf.Tensor;
  assert.equal(await maxDiff(ta, tb), 0);
  tf.dispose([x, a, b, ta, tb]);
  net.dispose();
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fit gives DropConnect layers a fresh seed every step, repeatably, and puts theirs back", async () => {
  const x = tf.randomUniform([32, 6, 6, 1], 0, 1, "float32", 7) as tf.Tensor4D;
  const data = tensorSource(x, Array.from({ length: 32 }, (_, i) => i % 3));
  const run = async () => {
    const model = dropConnectModel();
    const layer = model.getLayer("ddc") as DenseDropConnect;
    const seeds: (number | undefined)[] = [];
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => {
      if (kwargs.training) seeds.push(layer.seed);
      return call(inputs, kwargs);
    };
    await fit(model, data, { epochs: 2, batchSize: 8, seed: 4 });
    assert.equal(layer.seed, 2, "the layer's own seed is back");
    const w = model.getWeights().map((t) => Array.from(t.dataSync()));
    model.dispose();
    return { seeds, w };
  };
  const before = tf.memory().numTensors;
  const a = await run(), b = await run();
  assert.equal(a.seeds.length, 8);
  assert.equal(new Set(a.seeds).size, 8, "each step draws new masks");
  assert.deepEqual(a.seeds, b.seeds);
  assert.deepEqual(a.w, b.w);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("DropConnect layers refuse bad arguments with errors that say what to give", () => {
  assert.throws(() => denseDropConnect({ units: 3, rate: 1 }), /in \[0, 1\)/);
  assert.throws(() => denseDropConnect({ units: 0, rate: 0.5 }), /positive integer/);
  assert.throws(
    () => denseDropConnect({ units: 2, rate: 0.5, masks: "pixel" as "batch" }),
    /"example" or "batch"/,
  );
  const layer = denseDropConnect({ units: 2, rate: 0.5 });
  const x = tf.zeros([1, 3, 3]);
  assert.throws(() => layer.apply(x), /flatten or global pooling/);
  x.dispose();
});
