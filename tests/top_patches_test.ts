import assert from "node:assert/strict";
import { datasetFor } from "../core/data/dataset_for.ts";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import type { Context, InputImages } from "../core/plugin.ts";
import { checkParams } from "../core/plugin.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { writePng } from "../core/images/codecs.ts";
import { receptiveFields, unitWindow } from "../core/receptive_field.ts";
import { heldOutDigits } from "../core/datasets.ts";
import type { Result } from "../core/result.ts";
import { topPatches } from "../plugins/inspect/top_patches.ts";

await initBackend("cpu", { quiet: true });

/** A plugin context for a Net without a Lens; warnings go to `warnings`. */
function context(net: Net, warnings: string[] = []): Context & { images: InputImages } {
  const { height, width, channels } = net.input;
  const images = imagesFromPixels(net, tf.zeros([1, height, width, channels]) as tf.Tensor4D);
  return {
    net,
    images,
    rng: seededRandom(0),
    seed: 0,
    progress: () => {},
    warn: (m) => warnings.push(m),
    run: () => Promise.reject(new Error("not in tests")),
    runOn: () => Promise.reject(new Error("not in tests")),
    // The 28x28 test nets read the held-out digits, as with --data mnist.
    data: () => datasetFor(net, height === 28 && width === 28 ? "mnist" : undefined),
  };
}

async function run(
  net: Net,
  params: Record<string, unknown>,
  warnings: string[] = [],
): Promise<Result> {
  const ctx = context(net, warnings);
  try {
    return await topPatches.run(ctx, checkParams(topPatches, net, params));
  } finally {
    tf.dispose([ctx.images.x, ctx.images.pixels]);
  }
}

/**
 * 8x8 gray input, one linear 3x3 valid conv "c1" with three hand-set filters:
 * 0 sees the window's top-left pixel, 1 its centre, 2 the sum of the window;
 * then a max-pool, flatten and a dense softmax head.
 */
function handNet(): Net {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, name: "c1" }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "d" }),
    ],
  });
  const k = new Float32Array(9 * 3);
  k[0 * 3 + 0] = 1; // filter 0: top-left
  k[4 * 3 + 1] = 1; // filter 1: centre
  for (let i = 0; i < 9; i++) k[i * 3 + 2] = 1; // filter 2: sum
  const conv = model.getLayer("c1");
  const weights = [tf.tensor4d(k, [3, 3, 1, 3]), tf.zeros([3])];
  conv.setWeights(weights);
  tf.dispose(weights);
  return Net.fromModel(model);
}

// One bright pixel per image: (row, col, 8-bit value). Ranking by value: 1, 3, 2, 4, 0.
const SPOTS: [number, number, number][] = [
  [2, 3, 51],
  [4, 1, 230],
  [1, 5, 128],
  [5, 5, 179],
  [3, 3, 102],
];

async function spotFolder(spots = SPOTS, size = 8): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens-top-" });
  for (const [i, [r, c, v]] of spots.entries()) {
    const px = new Float32Array(size * size);
    px[r * size + c] = v / 255;
    const t = tf.tensor3d(px, [size, size, 1]);
    await writePng(`${dir}/img${i}.png`, t);
    t.dispose();
  }
  return dir;
}

Deno.test("top-patches finds the hand-computed strongest images and positions", async () => {
  const net = handNet();
  const dir = await spotFolder();
  try {
    const r = await run(net, { data: dir, layer: "c1", k: 3, channels: [0, 1, 2], scale: 2 });
    const values = await r.tensors.values.array() as number[][];
    const positions = await r.tensors.positions.array() as number[][][];
    const v = [230, 179, 128].map((x) => x / 255);
    for (let c = 0; c < 3; c++) {
      values[c].forEach((x, j) => assert.ok(Math.abs(x - v[j]) < 1e-6, `${c},${j}: ${x}`));
    }
    // Images 1, 3, 2; filter 0 peaks at the spot, 1 one up-left of it, 2 at the
    // first window holding it.
    assert.deepEqual(positions[0], [[1, 4, 1], [3, 5, 5], [2, 1, 5]]);
    assert.deepEqual(positions[1], [[1, 3, 0], [3, 4, 4], [2, 0, 4]]);
    assert.deepEqual(positions[2], [[1, 2, 0], [3, 3, 3], [2, 0, 3]]);
    assert.deepEqual(r.tensors.patches.shape, [3, 3, 3, 3, 1]);
    assert.equal(r.images.length, 1);
    assert.equal(r.figures.images, 5);
    r.dispose();
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches crops each unit's receptive field and projects it with the DeconvNet", async () => {
  const net = handNet();
  const dir = await spotFolder();
  try {
    const r = await run(net, { data: dir, layer: "c1", k: 3, channels: [0, 1, 2] });
    const patches = await r.tensors.patches.array() as number[][][][][];
    const positions = await r.tensors.positions.array() as number[][][];
    const rf = receptiveFields(net).get("c1")!;
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < 3; j++) {
        const [img, row, col] = positions[c][j];
        const [sr, sc, sv] = SPOTS[img];
        const win = unitWindow(rf, row, col, 8, 8);
        assert.deepEqual([win.y1 - win.y0, win.x1 - win.x0], [3, 3]);
        // The crop is the window: the spot where it lies in the window, zero elsewhere.
        for (let y = 0; y < 3; y++) {
          for (let x = 0; x < 3; x++) {
            const want = win.y0 + y === sr && win.x0 + x === sc ? sv / 255 : 0;
            assert.ok(Math.abs(patches[c][j][y][x][0] - want) < 1e-6, `${c} ${j} ${y} ${x}`);
          }
        }
      }
    }
    // A linear conv's DeconvNet projection of one unit is its filter.
    const proj = await r.tensors.projections.array() as number[][][][][];
    const kernel = net.kernel("c1");
    const k = await kernel.array() as number[][][][];
    kernel.dispose();
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < 3; j++) {
        for (let y = 0; y < 3; y++) {
          for (let x = 0; x < 3; x++) {
            assert.ok(Math.abs(proj[c][j][y][x][0] - k[y][x][0][c]) < 1e-6);
          }
        }
      }
    }
    r.dispose();
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches pads fields that leave the image", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 1,
        kernelSize: 5,
        padding: "same",
        kernelInitializer: "ones",
        name: "s",
      }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "d" }),
    ],
  });
  const net = Net.fromModel(model);
  const dir = await spotFolder([[0, 0, 255], [7, 7, 128]]);
  try {
    const r = await run(net, { data: dir, layer: "s", k: 2, project: true });
    const positions = await r.tensors.positions.array() as number[][][];
    assert.deepEqual(positions[0], [[0, 0, 0], [1, 5, 5]]);
    const patches = await r.tensors.patches.array() as number[][][][][];
    const rf = receptiveFields(net).get("s")!;
    assert.deepEqual(unitWindow(rf, 0, 0, 8, 8), { y0: 0, x0: 0, y1: 3, x1: 3 });
    // The 5x5 field of unit (0, 0) starts two pixels before the image: the spot at
    // pixel (0, 0) sits at (2, 2) of the crop, the rows and columns before it are padding.
    assert.equal(patches[0][0][2][2][0], 1);
    assert.equal(patches[0][0].flat(2).reduce((a, b) => a + b, 0), 1);
    // Unit (5, 5) sees rows and columns 3..7: the spot at (7, 7) is at (4, 4).
    assert.ok(Math.abs(patches[0][1][4][4][0] - 128 / 255) < 1e-6);
    assert.equal(r.images.length, 1);
    r.dispose();
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches skips unreadable images with a warning", async () => {
  const net = handNet();
  const dir = await spotFolder();
  await Deno.writeTextFile(`${dir}/broken.png`, "not a png");
  await Deno.writeTextFile(`${dir}/notes.txt`, "ignored");
  const warnings: string[] = [];
  try {
    const r = await run(net, { data: dir, layer: "c1", k: 2, project: false }, warnings);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /broken\.png/);
    assert.equal(r.figures.images, 5);
    assert.equal(r.tensors.projections, undefined);
    // broken.png sorts first: the images are indexed by their place in the listing.
    const positions = await r.tensors.positions.array() as number[][][];
    assert.deepEqual(positions[0].map((p) => p[0]), [2, 4]);
    assert.match(String(r.tables[0].rows[0][2]), /img1\.png, img3\.png/);
    r.dispose();
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches rejects bad inputs with clear errors", async () => {
  const net = handNet();
  const dir = await spotFolder();
  const empty = await Deno.makeTempDir();
  try {
    await assert.rejects(() => run(net, { data: empty }), /no PNG or JPEG images/);
    await assert.rejects(
      () => run(net, { data: `${empty}/missing` }),
      /cannot read the data folder/,
    );
    await assert.rejects(() => run(net, { data: dir, k: 6 }), /k = 6 is larger than the data set/);
    await assert.rejects(() => run(net, { data: dir, layer: "d" }), /no spatial extent/);
    await assert.rejects(() => run(net, { data: dir, layer: "c1", channels: [3] }), /channel 3/);
    await assert.rejects(() => run(net, { data: "held-out" }), /has no built-in data: give --data/);
    // k larger than the readable images, found only while streaming.
    await Deno.writeTextFile(`${dir}/zz.png`, "broken");
    await assert.rejects(
      () => run(net, { data: dir, layer: "c1", k: 6, project: false }),
      /only 5 of/,
    );
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(empty, { recursive: true });
  }
});

/** A small random 28x28 net (seeded weights) with two conv layers. */
function digitNet(): Net {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 4,
        kernelSize: 5,
        activation: "relu",
        name: "conv1",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "pool1" }),
      tf.layers.conv2d({
        filters: 6,
        kernelSize: 3,
        activation: "relu",
        name: "conv2",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }),
      }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({
        units: 10,
        activation: "softmax",
        name: "out",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }),
      }),
    ],
  });
  return Net.fromModel(model);
}

Deno.test("top-patches matches a naive per-image reference and is batch-size invariant", async () => {
  const net = digitNet();
  const count = 60;
  try {
    const before = tf.memory().numTensors;
    const results: Result[] = [];
    for (const batchSize of [1, 7, 64]) {
      results.push(await run(net, { count, k: 5, batchSize, layer: "conv2", maxChannels: 6 }));
    }
    // Naive reference: every image alone, every position, per channel.
    const { images } = await heldOutDigits({ count });
    const act = tf.tidy(() => net.forward(images, { taps: ["conv2"] }).taps.conv2);
    const a = await act.array() as number[][][][];
    tf.dispose([images, act]);
    const ref = Array.from({ length: 6 }, (_, c) =>
      a.map((img, i) => {
        let best = -Infinity, at = [0, 0];
        img.forEach((row, y) =>
          row.forEach((v, x) => {
            if (v[c] > best) [best, at] = [v[c], [y, x]];
          })
        );
        return { v: best, pos: [i, ...at] };
      }).sort((p, q) => q.v - p.v || p.pos[0] - q.pos[0]).slice(0, 5));
    const want = ref.map((r) => r.map((e) => e.pos));
    for (const r of results) {
      assert.deepEqual(await r.tensors.positions.array(), want);
      const values = await r.tensors.values.array() as number[][];
      values.forEach((row, c) =>
        row.forEach((v, j) => assert.ok(Math.abs(v - ref[c][j].v) < 1e-5))
      );
    }
    const p0 = await results[0].tensors.projections.data();
    for (const r of results.slice(1)) {
      const p = await r.tensors.projections.data();
      p.forEach((v, i) => assert.ok(Math.abs(v - p0[i]) < 1e-5));
    }
    for (const r of results) r.dispose();
    assert.equal(tf.memory().numTensors, before, "no tensors leak");
  } finally {
    net.dispose();
  }
});

Deno.test("top-patches leaks no tensors, with and without projections", async () => {
  const net = handNet();
  const dir = await spotFolder();
  try {
    for (const project of [true, false]) {
      const before = tf.memory().numTensors;
      const r = await run(net, { data: dir, layer: "p1", k: 4, project, batchSize: 3 });
      r.dispose();
      assert.equal(tf.memory().numTensors, before);
    }
    const before = tf.memory().numTensors;
    await assert.rejects(() => run(net, { data: dir, k: 9 }));
    assert.equal(tf.memory().numTensors, before);
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches resultShape agrees with the result", async () => {
  const net = digitNet();
  try {
    const params = checkParams(topPatches, net, { count: 20, k: 3, maxChannels: 2 });
    const ctx = context(net);
    const shape = topPatches.resultShape!(net, params, ctx.images);
    const r = await topPatches.run(ctx, params);
    tf.dispose([ctx.images.x, ctx.images.pixels]);
    for (const [name, s] of Object.entries(shape)) assert.deepEqual(r.tensors[name].shape, s);
    assert.deepEqual(Object.keys(r.tensors).sort(), Object.keys(shape).sort());
    // Default layer: the last conv layer, whose 3x3 units on a 2x-pooled 5x5 see 10x10.
    assert.equal(r.figures.layer, "conv2");
    assert.deepEqual(shape.patches, [2, 3, 10, 10, 1]);
    r.dispose();
  } finally {
    net.dispose();
  }
});

const MNIST = new URL("../models/mnist/model.json", import.meta.url);
const haveMnist = await Deno.stat(MNIST).then(() => true, () => false);

Deno.test({
  name: "top-patches runs over the held-out digits with the built-in MNIST model",
  ignore: !haveMnist,
  async fn() {
    const { loadNet } = await import("../core/load.ts");
    const net = await loadNet(decodeURIComponent(new URL(".", MNIST).pathname));
    try {
      const before = tf.memory().numTensors;
      const r = await run(net, { count: 300, k: 9, maxChannels: 4 });
      const values = await r.tensors.values.array() as number[][];
      for (const row of values) {
        for (let j = 1; j < row.length; j++) assert.ok(row[j] <= row[j - 1]);
      }
      assert.equal(r.figures.images, 300);
      r.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      net.dispose();
    }
  },
});

Deno.test("top-patches on WASM agrees with CPU, projections included", async () => {
  const net = digitNet();
  const params = { count: 40, k: 4, batchSize: 16, layer: "conv2", maxChannels: 6 };
  try {
    const cpu = await run(net, params);
    await initBackend("wasm", { quiet: true });
    try {
      assert.equal(tf.getBackend(), "wasm");
      const before = tf.memory().numTensors;
      const wasm = await run(net, params);
      assert.deepEqual(await wasm.tensors.positions.array(), await cpu.tensors.positions.array());
      for (const name of ["values", "patches", "projections"]) {
        const a = await cpu.tensors[name].data(), b = await wasm.tensors[name].data();
        a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-4, `${name} [${i}]`));
      }
      wasm.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      await initBackend("cpu", { quiet: true });
      cpu.dispose();
    }
  } finally {
    net.dispose();
  }
});

Deno.test("top-patches breaks ties by the lower image index, whatever the batches", async () => {
  const net = handNet();
  // Images 0, 1 and 2 tie for every filter; image 3 is weaker.
  const dir = await spotFolder([[2, 3, 200], [4, 1, 200], [1, 5, 200], [5, 5, 100]]);
  try {
    for (const batchSize of [1, 2, 4]) {
      const r = await run(net, { data: dir, layer: "c1", k: 2, channels: [0, 1], batchSize });
      const positions = await r.tensors.positions.array() as number[][][];
      assert.deepEqual(
        positions.map((p) => p.map((q) => q[0])),
        [[0, 1], [0, 1]],
        `batch ${batchSize}`,
      );
      r.dispose();
    }
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("top-patches crops after pooling are the naive windows [2r, 2r+4) x [2c, 2c+4) of the input", async () => {
  const net = handNet();
  const dir = await Deno.makeTempDir({ prefix: "convlens-top-" });
  const pixels: Float32Array[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      // A different ramp per image: a crop from the wrong place shows.
      const px = Float32Array.from({ length: 64 }, (_, k) => (((k * 3 + 37 * i) % 251) + 2) / 255);
      pixels.push(px);
      const t = tf.tensor3d(px, [8, 8, 1]);
      await writePng(`${dir}/img${i}.png`, t);
      t.dispose();
    }
    const r = await run(net, { data: dir, layer: "p1", k: 3, channels: [0, 2] });
    const patches = await r.tensors.patches.array() as number[][][][][];
    const positions = await r.tensors.positions.array() as number[][][];
    // A 3x3 valid conv then a 2x2 pool: unit (r, c) sees input rows 2r..2r+3, cols 2c..2c+3.
    for (const c of [0, 1]) {
      for (let j = 0; j < 3; j++) {
        const [img, row, col] = positions[c][j];
        const patch = patches[c][j];
        assert.deepEqual([patch.length, patch[0].length], [4, 4]);
        for (let y = 0; y < 4; y++) {
          for (let x = 0; x < 4; x++) {
            const want = Math.round(pixels[img][(2 * row + y) * 8 + 2 * col + x] * 255) / 255;
            assert.ok(
              Math.abs(patch[y][x][0] - want) < 1e-6,
              `channel ${c} #${j} (image ${img}, unit ${row},${col}) at ${y},${x}`,
            );
          }
        }
      }
    }
    r.dispose();
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
