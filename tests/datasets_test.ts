import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  CANVAS_SIZE,
  canvasArrays,
  canvasSet,
  heldOutCanvases,
  heldOutDigits,
  loadMnist,
  mnistSplit,
  trainCanvases,
  trainDigits,
} from "../core/datasets.ts";
import { evaluate } from "../core/train/metrics.ts";
import { tensorSource } from "../core/data/source.ts";
import { loadNet } from "../core/load.ts";
import { seededRandom } from "../core/random.ts";

const MODEL_DIR = new URL("../models/mnist", import.meta.url).pathname;
await initBackend(undefined, { quiet: true });

Deno.test("seededRandom gives the same sequence for the same seed, in [0, 1)", () => {
  const a = seededRandom(5).next, b = seededRandom(5).next, c = seededRandom(6).next;
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

Deno.test("the split has 8000 training and 2000 held-out digits, disjoint, covering all", () => {
  const { train, heldOut } = mnistSplit();
  assert.equal(train.length, 8000);
  assert.equal(heldOut.length, 2000);
  const all = new Set([...train, ...heldOut]);
  assert.equal(all.size, 10000);
  assert.ok([...all].every((i) => Number.isInteger(i) && i >= 0 && i < 10000));
});

Deno.test("the same seed gives the same split and another seed a different one", () => {
  assert.deepEqual(mnistSplit(), mnistSplit());
  assert.deepEqual(mnistSplit(3), mnistSplit(3));
  assert.notDeepEqual(mnistSplit(3).heldOut, mnistSplit(4).heldOut);
});

Deno.test("the digits load in a fixed order with pixels in [0, 1] and labels 0..9", async () => {
  const a = await loadMnist();
  assert.equal(a.count, 10000);
  assert.equal(a.pixels.length, 10000 * 784);
  assert.ok(a.pixels instanceof Float32Array);
  let min = Infinity, max = -Infinity;
  for (const v of a.pixels) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  assert.equal(min, 0);
  assert.ok(max <= 1 && max > 0.9, `max ${max}`);
  assert.deepEqual([...new Set(a.labels)].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(a.labels[0], 0);
  assert.equal(a.labels[9999], 9);
  assert.equal(await loadMnist(), a, "parsed once, then cached");
});

Deno.test("held-out and training digits come as [n, 28, 28, 1] windows with all labels", async () => {
  const before = tf.memory().numTensors;
  const held = await heldOutDigits();
  assert.deepEqual(held.images.shape, [2000, 28, 28, 1]);
  assert.equal(held.images.dtype, "float32");
  assert.equal(held.labels.length, 2000);
  assert.deepEqual([...new Set(held.labels)].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const range = tf.tidy(() => [held.images.min().dataSync()[0], held.images.max().dataSync()[0]]);
  assert.ok(range[0] >= 0 && range[1] <= 1);

  const part = await heldOutDigits({ count: 5, offset: 10 });
  assert.deepEqual(part.labels, held.labels.slice(10, 15));
  const same = tf.tidy(() =>
    held.images.slice([10, 0, 0, 0], [5, -1, -1, -1]).sub(part.images).abs().max().dataSync()[0]
  );
  assert.equal(same, 0);

  const train = await trainDigits({ count: 100 });
  assert.deepEqual(train.images.shape, [100, 28, 28, 1]);
  const tail = await trainDigits({ offset: 7990 });
  assert.equal(tail.labels.length, 10, "count clipped to what is left");
  for (const t of [held, part, train, tail]) t.images.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("bad windows give errors that name the problem", async () => {
  await assert.rejects(heldOutDigits({ offset: 2000 }), /offset 2000 is out of range/);
  await assert.rejects(trainDigits({ count: 0 }), /count 0 is invalid/);
  await assert.rejects(canvasSet({ maxScale: 3 }), /do not fit/);
  await assert.rejects(
    canvasSet({ part: "test" as unknown as "train" }),
    /part "test" is unknown/,
  );
});

Deno.test("canvases are [n, 64, 64, 1] in [0, 1] with boxes inside the canvas", async () => {
  const before = tf.memory().numTensors;
  const c = await heldOutCanvases({ count: 50 });
  assert.deepEqual(c.images.shape, [50, CANVAS_SIZE, CANVAS_SIZE, 1]);
  assert.equal(c.labels.length, 50);
  assert.equal(c.boxes.length, 50);
  const [lo, hi] = tf.tidy(() => [c.images.min().dataSync()[0], c.images.max().dataSync()[0]]);
  assert.ok(lo >= 0 && hi <= 1, `${lo}..${hi}`);
  for (const b of c.boxes) {
    assert.ok(0 <= b.y0 && b.y0 < b.y1 && b.y1 <= CANVAS_SIZE, JSON.stringify(b));
    assert.ok(0 <= b.x0 && b.x0 < b.x1 && b.x1 <= CANVAS_SIZE, JSON.stringify(b));
    const h = b.y1 - b.y0, w = b.x1 - b.x0;
    assert.ok(Math.max(h, w) >= 8 && Math.max(h, w) <= 46, `box ${h}x${w}`);
  }
  c.images.dispose();
  const t = await trainCanvases({ count: 3 });
  t.images.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("the ink inside a canvas's box is the placed digit's, brighter than the clutter", async () => {
  const a = await canvasArrays({ count: 100 });
  const S = a.size;
  let cluttered = 0, compared = 0;
  for (let k = 0; k < 100; k++) {
    const b = a.boxes[k];
    const px = a.pixels.subarray(k * S * S, (k + 1) * S * S);
    // Integral image, for the sum of any window.
    const I = new Float64Array((S + 1) * (S + 1));
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        I[(y + 1) * (S + 1) + x + 1] = px[y * S + x] + I[y * (S + 1) + x + 1] +
          I[(y + 1) * (S + 1) + x] - I[y * (S + 1) + x];
      }
    }
    const sum = (y0: number, x0: number, y1: number, x1: number) =>
      I[y1 * (S + 1) + x1] - I[y0 * (S + 1) + x1] - I[y1 * (S + 1) + x0] + I[y0 * (S + 1) + x0];
    const h = b.y1 - b.y0, w = b.x1 - b.x0;
    const inside = sum(b.y0, b.x0, b.y1, b.x1);
    // Every window of the box's size that does not touch the box holds less ink.
    for (let y = 0; y + h <= S; y++) {
      for (let x = 0; x + w <= S; x++) {
        if (y < b.y1 && y + h > b.y0 && x < b.x1 && x + w > b.x0) continue;
        compared++;
        const there = sum(y, x, y + h, x + w);
        assert.ok(inside > there, `canvas ${k}: box ${inside} <= window at ${y},${x}: ${there}`);
      }
    }
    let maxOutside = 0;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        if (y >= b.y0 && y < b.y1 && x >= b.x0 && x < b.x1) continue;
        maxOutside = Math.max(maxOutside, px[y * S + x]);
      }
    }
    assert.ok(maxOutside <= 0.5 + 1e-6, `canvas ${k}: clutter ${maxOutside} too bright`);
    if (sum(0, 0, S, S) - inside > 0) cluttered++;
  }
  assert.ok(compared > 10000, `only ${compared} windows compared`);
  assert.ok(cluttered >= 95, `only ${cluttered} of 100 canvases have clutter`);

  // Without clutter and at scale 1 a held-out canvas is exactly held-out digit k, moved.
  const plain = await canvasArrays({
    count: 4,
    offset: 2001,
    minScale: 1,
    maxScale: 1,
    minFragments: 0,
    maxFragments: 0,
  });
  const digits = await heldOutDigits({ count: 4, offset: 1 });
  const d = (await digits.images.data()) as Float32Array;
  digits.images.dispose();
  for (let k = 0; k < 4; k++) {
    const canvasSum = plain.pixels.subarray(k * S * S, (k + 1) * S * S).reduce((s, v) => s + v, 0);
    const digitSum = d.subarray(k * 784, (k + 1) * 784).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(canvasSum - digitSum) < 1e-3, `${canvasSum} vs ${digitSum}`);
    assert.equal(plain.labels[k], digits.labels[k]);
  }
});

Deno.test("canvases are deterministic and the same whatever window they are made in", async () => {
  const a = await canvasArrays({ part: "train", count: 10, offset: 100 });
  const b = await canvasArrays({ part: "train", count: 10, offset: 100 });
  assert.deepEqual(a, b);
  const c = await canvasArrays({ part: "train", count: 3, offset: 105 });
  const plane = 64 * 64;
  assert.deepEqual(c.pixels, a.pixels.slice(5 * plane, 8 * plane));
  assert.deepEqual(c.boxes, a.boxes.slice(5, 8));
  const other = await canvasArrays({ part: "train", count: 10, offset: 100, seed: 99 });
  assert.notDeepEqual(other.boxes, a.boxes);
  const held = await canvasArrays({ count: 10, offset: 100 });
  assert.notDeepEqual(held.pixels, a.pixels, "held-out canvases differ from training ones");
});

Deno.test("the committed MNIST model loads and reaches 98% on the held-out digits", async () => {
  const before = tf.memory().numTensors;
  const model = (await loadNet(MODEL_DIR)).model as tf.LayersModel;
  const names = model.layers.map((l) => l.name);
  for (
    const n of ["conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "fc1", "logits", "probs"]
  ) {
    assert.ok(names.includes(n), `layer ${n} missing: ${names.join(", ")}`);
  }
  const sidecar = JSON.parse(await Deno.readTextFile(`${MODEL_DIR}/convlens.json`));
  assert.equal(sidecar.logits, "logits");
  assert.equal(sidecar.probs, "probs");
  const held = await heldOutDigits();
  const { accuracy: acc } = await evaluate(model, tensorSource(held.images, held.labels));
  held.images.dispose();
  model.dispose();
  assert.ok(acc >= 0.98, `held-out accuracy ${acc}`);
  assert.ok(
    Math.abs(acc - sidecar.heldOutAccuracy) < 0.002,
    `${acc} vs ${sidecar.heldOutAccuracy}`,
  );
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("the committed canvas model loads and classifies held-out canvases as its sidecar says", async () => {
  const dir = new URL("../models/canvas", import.meta.url).pathname;
  const before = tf.memory().numTensors;
  const model = (await loadNet(dir)).model as tf.LayersModel;
  const names = model.layers.map((l) => l.name);
  for (const n of ["conv1", "conv2", "conv3", "conv4", "conv5", "gap", "logits", "probs"]) {
    assert.ok(names.includes(n), `layer ${n} missing: ${names.join(", ")}`);
  }
  assert.deepEqual(model.inputs[0].shape, [null, 64, 64, 1]);
  const sidecar = JSON.parse(await Deno.readTextFile(`${dir}/convlens.json`));
  const held = await heldOutCanvases({ count: 500 });
  const { accuracy: acc } = await evaluate(model, tensorSource(held.images, held.labels), {
    batchSize: 100,
  });
  held.images.dispose();
  model.dispose();
  assert.ok(Math.abs(acc - sidecar.heldOutAccuracy) < 0.04, `${acc} vs ${sidecar.heldOutAccuracy}`);
  assert.ok(acc >= 0.9, `held-out accuracy ${acc}`);
  assert.equal(tf.memory().numTensors, before);
});
