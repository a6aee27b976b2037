import assert from "node:assert/strict";
import { datasetFor } from "../core/data/dataset_for.ts";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import type { Context, InputImages } from "../core/plugin.ts";
import { checkParams } from "../core/plugin.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import type { Result } from "../core/result.ts";
import { occlusion } from "../plugins/attribute/occlusion.ts";

await initBackend("cpu", { quiet: true });

function context(images: InputImages, net: Net): Context {
  return {
    net,
    images,
    rng: seededRandom(0),
    seed: 0,
    progress: () => {},
    warn: () => {},
    run: () => Promise.reject(new Error("not in tests")),
    runOn: () => Promise.reject(new Error("not in tests")),
    data: () => datasetFor(net),
  };
}

/** Runs the plugin on `pixels` ([n, h, w, c], not disposed) with `params`. */
async function run(
  net: Net,
  pixels: tf.Tensor4D,
  params: Record<string, unknown>,
  labels?: number[],
): Promise<Result> {
  const images = imagesFromPixels(net, pixels.clone(), labels);
  try {
    return await occlusion.run(context(images, net), checkParams(occlusion, net, params));
  } finally {
    tf.dispose([images.x, images.pixels]);
  }
}

function setWeights(net: Net, layer: string, values: tf.Tensor[]): void {
  (net.model as tf.LayersModel).getLayer(layer).setWeights(values);
  tf.dispose(values);
}

/**
 * 6x6 gray input, a 1x1 identity conv "id", then a dense softmax head whose
 * logits are `x[1, 1]` for class 0 and the constant 0.25 for class 1.
 */
function handNet(): Net {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 1, kernelSize: 1, name: "id" }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "d" }),
    ],
  });
  const net = Net.fromModel(model);
  setWeights(net, "id", [tf.ones([1, 1, 1, 1]), tf.zeros([1])]);
  const w = new Float32Array(36 * 2);
  w[(1 * 6 + 1) * 2 + 0] = 1;
  setWeights(net, "d", [tf.tensor2d(w, [36, 2]), tf.tensor1d([0, 0.25])]);
  return net;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

Deno.test("occlusion gives the hand-computed maps on a tiny net", async () => {
  const net = handNet();
  const ones = tf.ones([1, 6, 6, 1]) as tf.Tensor4D;
  try {
    const r = await run(net, ones, { size: 2, stride: 2, fill: 0, class: 0 });
    // Only the square at (0, 0) hides pixel (1, 1): logit 0 drops from 1 to 0.
    const hi = sigmoid(1 - 0.25), lo = sigmoid(0 - 0.25);
    const prob = await r.tensors.probability.array() as number[][];
    assert.deepEqual(r.tensors.probability.shape, [3, 3]);
    prob.flat().forEach((v, i) =>
      assert.ok(Math.abs(v - (i === 0 ? lo : hi)) < 1e-6, `${i}: ${v}`)
    );
    // Total activation of the identity map: 36 ones less the 4 hidden.
    (await r.tensors.activation.data()).forEach((v) => assert.ok(Math.abs(v - 32) < 1e-5));
    assert.deepEqual(await r.tensors.classes.array(), [[1, 0, 0], [0, 0, 0], [0, 0, 0]]);
    assert.equal(r.figures.lowestAt, "rows 0-1, cols 0-1");
    assert.ok(Math.abs((r.figures.probability as number) - sigmoid(0.75)) < 1e-6);
    assert.equal(r.figures.classFrom, "chosen");
    assert.equal(r.images.length, 1);
    r.dispose();
    // A grey square at 0.5: the activation is 36 - 4 * 0.5 everywhere.
    const g = await run(net, ones, { size: 2, stride: 2, fill: 0.5, class: 0 });
    (await g.tensors.activation.data()).forEach((v) => assert.ok(Math.abs(v - 34) < 1e-5));
    g.dispose();
  } finally {
    ones.dispose();
    net.dispose();
  }
});

Deno.test("occlusion fills with the image mean by default and picks the true class", async () => {
  const net = handNet();
  // Left half 1, right half 0: mean 0.5; pixel (1, 1) is 1.
  const px = tf.tidy(() =>
    tf.concat([tf.ones([1, 6, 3, 1]), tf.zeros([1, 6, 3, 1])], 2)
  ) as tf.Tensor4D;
  try {
    const r = await run(net, px, { size: 3, stride: 3 }, [1]);
    assert.equal(r.figures.fill, 0.5);
    assert.equal(r.figures.class, 1);
    assert.equal(r.figures.classFrom, "true");
    // Class 1's probability; the square at (0, 0) sets x[1, 1] to 0.5.
    const prob = await r.tensors.probability.array() as number[][];
    const want = [[1 - sigmoid(0.5 - 0.25), 1 - sigmoid(0.75)], [
      1 - sigmoid(0.75),
      1 - sigmoid(0.75),
    ]];
    prob.flat().forEach((v, i) => assert.ok(Math.abs(v - want.flat()[i]) < 1e-6));
    // Activation: 18 ones; the left squares replace 9 ones by 0.5, the right 9 zeros by 0.5.
    const act = await r.tensors.activation.array() as number[][];
    assert.deepEqual(act.flat().map((v) => Math.round(v * 1e4) / 1e4), [13.5, 22.5, 13.5, 22.5]);
    r.dispose();
    // Without a label the predicted class is used.
    const q = await run(net, px, { size: 3, stride: 3 });
    assert.equal(q.figures.classFrom, "predicted");
    assert.equal(q.figures.class, 0);
    q.dispose();
  } finally {
    px.dispose();
    net.dispose();
  }
});

/** A small random RGB conv net (seeded), 12x12x3 in, 5 classes. */
function randomNet(): Net {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 3],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        name: "c1",
        kernelInitializer: init(1),
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
      tf.layers.conv2d({
        filters: 5,
        kernelSize: 3,
        activation: "relu",
        padding: "same",
        name: "c2",
        kernelInitializer: init(2),
      }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({
        units: 5,
        activation: "softmax",
        name: "d",
        kernelInitializer: init(3),
      }),
    ],
  });
  return Net.fromModel(model, { input: { mean: [0.5], std: [0.25] } });
}

function randomImage(): tf.Tensor4D {
  return tf.randomUniform([1, 12, 12, 3], 0, 1, "float32", 7) as tf.Tensor4D;
}

Deno.test("occlusion matches a naive loop over positions", async () => {
  const net = randomNet();
  const px = randomImage();
  try {
    const size = 4, stride = 3, fill = 0.3;
    const r = await run(net, px, { size, stride, fill, class: 2, layer: "c2" });
    const grid = Math.floor((12 - size) / stride) + 1;
    const base = await px.data();
    // Strongest map of c2 in the unoccluded image (largest single activation).
    const act0 = tf.tidy(() => net.forward(net.fromPixels(px), { taps: ["c2"] }).taps.c2);
    const a0 = await act0.data();
    act0.dispose();
    let channel = 0;
    for (let i = 0; i < a0.length; i++) if (a0[i] > a0[channel]) channel = i;
    channel %= 5;
    assert.equal(r.figures.strongestChannel, channel);
    const prob = await r.tensors.probability.data();
    const act = await r.tensors.activation.data();
    const cls = await r.tensors.classes.data();
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const copy = Float32Array.from(base);
        for (let y = gy * stride; y < gy * stride + size; y++) {
          for (let x = gx * stride; x < gx * stride + size; x++) {
            for (let c = 0; c < 3; c++) copy[(y * 12 + x) * 3 + c] = fill;
          }
        }
        const [p, a] = tf.tidy(() => {
          const x = net.fromPixels(tf.tensor4d(copy, [1, 12, 12, 3]));
          const f = net.forward(x, { taps: ["c2"], logits: true });
          const probs = tf.softmax(f.logits as tf.Tensor2D);
          const total = f.taps.c2.slice([0, 0, 0, channel], [1, -1, -1, 1]).sum();
          return [probs, total];
        });
        const pv = await p.data(), av = (await a.data())[0];
        tf.dispose([p, a]);
        const i = gy * grid + gx;
        assert.ok(Math.abs(prob[i] - pv[2]) < 1e-5, `p ${i}`);
        assert.ok(Math.abs(act[i] - av) < 1e-4 * Math.max(1, Math.abs(av)), `a ${i}`);
        assert.equal(cls[i], pv.indexOf(Math.max(...pv)), `class ${i}`);
      }
    }
    r.dispose();
  } finally {
    px.dispose();
    net.dispose();
  }
});

async function maps(r: Result): Promise<Float32Array[]> {
  return [
    await r.tensors.probability.data() as Float32Array,
    await r.tensors.activation.data() as Float32Array,
    Float32Array.from(await r.tensors.classes.data()),
  ];
}

function assertClose(a: Float32Array[], b: Float32Array[], tol: number): void {
  a.forEach((m, k) =>
    m.forEach((v, i) =>
      assert.ok(Math.abs(v - b[k][i]) <= tol * Math.max(1, Math.abs(v)), `map ${k} [${i}]`)
    )
  );
}

Deno.test("occlusion gives the same maps for batch sizes 1, 7 and 64, and leaks nothing", async () => {
  const net = randomNet();
  const px = randomImage();
  try {
    const before = tf.memory().numTensors;
    const out: Float32Array[][] = [];
    for (const batchSize of [1, 7, 64]) {
      const r = await run(net, px, { size: 3, stride: 1, batchSize });
      out.push(await maps(r));
      r.dispose();
      assert.equal(tf.memory().numTensors, before, `batch ${batchSize}`);
    }
    assertClose(out[1], out[0], 1e-6);
    assertClose(out[2], out[0], 1e-6);
  } finally {
    px.dispose();
    net.dispose();
  }
});

Deno.test("occlusion on WASM agrees with CPU", async () => {
  const net = randomNet();
  const px = randomImage();
  try {
    const cpu = await run(net, px, { size: 4, stride: 2, batchSize: 16 });
    const a = await maps(cpu);
    cpu.dispose();
    await initBackend("wasm", { quiet: true });
    try {
      assert.equal(tf.getBackend(), "wasm");
      const before = tf.memory().numTensors;
      const wasm = await run(net, px, { size: 4, stride: 2, batchSize: 16 });
      assertClose(await maps(wasm), a, 1e-4);
      wasm.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      await initBackend("cpu", { quiet: true });
    }
  } finally {
    px.dispose();
    net.dispose();
  }
});

Deno.test("occlusion rejects bad inputs with clear errors", async () => {
  const net = randomNet();
  const px = randomImage();
  try {
    const before = tf.memory().numTensors;
    await assert.rejects(() => run(net, px, { size: 13 }), /13x13 patch is larger than the 12x12/);
    await assert.rejects(() => run(net, px, { image: 1 }), /image 1 does not exist/);
    await assert.rejects(() => run(net, px, { class: 5 }), /Class index 5 is out of range/);
    await assert.rejects(() => run(net, px, { layer: "d" }), /no spatial extent/);
    await assert.rejects(() => run(net, px, { fill: 2 }), /fill/);
    assert.throws(
      () => occlusion.resultShape!(net, checkParams(occlusion, net, { size: 20 }), null as never),
      /larger than/,
    );
    assert.equal(tf.memory().numTensors, before);
  } finally {
    px.dispose();
    net.dispose();
  }
});

Deno.test("occlusion resultShape agrees with the result", async () => {
  const net = randomNet();
  const px = randomImage();
  try {
    const params = { size: 5, stride: 2 };
    const shape = occlusion.resultShape!(net, checkParams(occlusion, net, params), null as never);
    const r = await run(net, px, params);
    for (const [name, s] of Object.entries(shape)) assert.deepEqual(r.tensors[name].shape, s);
    assert.deepEqual(Object.keys(r.tensors).sort(), Object.keys(shape).sort());
    assert.equal(r.figures.layer, "c2");
    r.dispose();
  } finally {
    px.dispose();
    net.dispose();
  }
});
