import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  boxesToCorners,
  boxesToXywh,
  boxFromMap,
  boxLoss,
  boxToXywh,
  cornersToBoxes,
  giou,
  iou,
  iouSummary,
  xywhToBox,
  xywhToCorners,
} from "../plugins/train/localize/mod.ts";

await initBackend("wasm", { quiet: true });

async function values(t: tf.Tensor): Promise<number[]> {
  const v = Array.from(await t.data());
  t.dispose();
  return v;
}

function close(actual: number[], expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= tol, `item ${i}: ${v} vs ${expected[i]}`)
  );
}

// Pairs [y0, x0, y1, x1] with IoU and GIoU worked out by hand.
const PAIRS: { name: string; a: number[]; b: number[]; iou: number; giou: number }[] = [
  // Identical: intersection = union = enclosure.
  { name: "identical", a: [1, 2, 5, 7], b: [1, 2, 5, 7], iou: 1, giou: 1 },
  // Disjoint side by side, 1x1 each, gap 1: union 2, enclosure 1x3 = 3, GIoU = 0 - 1/3.
  { name: "disjoint", a: [0, 0, 1, 1], b: [0, 2, 1, 3], iou: 0, giou: -1 / 3 },
  // Far apart diagonally: union 2, enclosure 10x10 = 100, GIoU = -(98/100).
  { name: "far apart", a: [0, 0, 1, 1], b: [9, 9, 10, 10], iou: 0, giou: -0.98 },
  // Nested: 2x2 inside 4x4: IoU 4/16, enclosure is the outer box = union, GIoU = IoU.
  { name: "nested", a: [0, 0, 4, 4], b: [1, 1, 3, 3], iou: 0.25, giou: 0.25 },
  // Partial diagonal overlap of 2x2 squares: inter 1, union 7, enclosure 9: 1/7 - 2/9.
  { name: "partial", a: [0, 0, 2, 2], b: [1, 1, 3, 3], iou: 1 / 7, giou: 1 / 7 - 2 / 9 },
  // Touching edges: no area in common, union 2, enclosure 2: GIoU 0.
  { name: "touching", a: [0, 0, 1, 1], b: [0, 1, 1, 2], iou: 0, giou: 0 },
];

Deno.test("iou() and giou() match hand-computed values on a batch of pairs", async () => {
  const before = tf.memory().numTensors;
  const a = tf.tensor2d(PAIRS.map((p) => p.a));
  const b = tf.tensor2d(PAIRS.map((p) => p.b));
  close(await values(iou(a, b)), PAIRS.map((p) => p.iou));
  close(await values(giou(a, b)), PAIRS.map((p) => p.giou));
  // Symmetric, and unchanged when one axis is rescaled (normalized boxes score alike).
  close(await values(iou(b, a)), PAIRS.map((p) => p.iou));
  const scale = tf.tensor1d([1 / 10, 1 / 20, 1 / 10, 1 / 20]);
  const [as, bs] = [a.mul(scale) as tf.Tensor2D, b.mul(scale) as tf.Tensor2D];
  close(await values(giou(as, bs)), PAIRS.map((p) => p.giou));
  const s = await iouSummary(a, b);
  close([s.meanIoU], [(1 + 0.25 + 1 / 7) / PAIRS.length]);
  assert.equal(s.iouAbove05, 1 / PAIRS.length);
  tf.dispose([a, b, scale, as, bs]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("iou() refuses tensors that are not [n, 4] pairs", () => {
  const a = tf.zeros([3, 4]) as tf.Tensor2D, b = tf.zeros([2, 4]) as tf.Tensor2D;
  assert.throws(() => iou(a, b), /two \[n, 4\] tensors/);
  assert.throws(() => giou(a, tf.zeros([3, 3]) as tf.Tensor2D), /\[n, 4\]/);
  tf.dispose([a, b]);
});

Deno.test("boxes convert between pixels, (x, y, w, h) and corners both ways", async () => {
  const before = tf.memory().numTensors;
  const box = { y0: 8, x0: 16, y1: 40, x1: 24 };
  // On a 64-high, 32-wide image: x = 16/32, y = 8/64, w = 8/32, h = 32/64.
  close(boxToXywh(box, 64, 32), [0.5, 0.125, 0.25, 0.5]);
  assert.deepEqual(xywhToBox([0.5, 0.125, 0.25, 0.5], 64, 32), box);
  const xywh = boxesToXywh([box, { y0: 0, x0: 0, y1: 64, x1: 32 }], 64, 32);
  const corners = xywhToCorners(xywh);
  close(Array.from(await corners.data()), [0.125, 0.5, 0.625, 0.75, 0, 0, 1, 1]);
  assert.deepEqual((await cornersToBoxes(corners, 64, 32))[0], box);
  const px = boxesToCorners([box]);
  close(Array.from(await px.data()), [8, 16, 40, 24]);
  tf.dispose([xywh, corners, px]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("boxLoss() gives L2, smooth-L1 and GIoU losses as worked out by hand", async () => {
  const before = tf.memory().numTensors;
  // Predicted off the target by (0.3, 0, 0.05, 0): L2 = 0.09 + 0.0025.
  const t = tf.tensor2d([[0.1, 0.1, 0.2, 0.2]]);
  const p = tf.tensor2d([[0.4, 0.1, 0.25, 0.2]]);
  close(await values(boxLoss("l2", p, t)), [0.0925]);
  // Smooth-L1, beta 0.1: |0.3| is past beta (0.3 - 0.05), |0.05| inside (0.05^2 / 0.2).
  close(await values(boxLoss("smooth-l1", p, t, 0.1)), [0.25 + 0.0125]);
  // GIoU: boxes x 0.1-0.3 and 0.4-0.65, same rows: disjoint, union 0.2*0.2 + 0.25*0.2 = 0.09,
  // enclosure 0.55 * 0.2 = 0.11, GIoU = -(0.02 / 0.11), loss 1 + 0.02 / 0.11.
  close(await values(boxLoss("giou", p, t)), [1 + 0.02 / 0.11], 1e-5);
  assert.throws(
    () => boxLoss("l1" as "l2", p, t),
    /Unknown box loss "l1": use one of l2, smooth-l1, giou/,
  );
  tf.dispose([t, p]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("boxFromMap() boxes the largest blob, or all pixels above the threshold", async () => {
  const before = tf.memory().numTensors;
  // Image 0: a 4x5 blob at rows 2-5, cols 3-7 (value 1), a 2x2 blob at rows 10-11,
  // cols 10-11 (0.9), faint noise (0.3) everywhere else; image 1: all zeros;
  // image 2: an L-shaped region (connected only through a diagonal step).
  const h = 16, w = 16;
  const v = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) v[i] = 0.3 * ((i * 7919) % 13) / 13;
  for (let y = 2; y < 6; y++) for (let x = 3; x < 8; x++) v[y * w + x] = 1;
  for (let y = 10; y < 12; y++) for (let x = 10; x < 12; x++) v[y * w + x] = 0.9;
  const third = 2 * h * w;
  for (let x = 0; x < 6; x++) v[third + 1 * w + x] = 1; // row 1, cols 0-5
  for (let y = 2; y < 9; y++) v[third + y * w + 6] = 1; // col 6, rows 2-8 (diagonal join)
  v[third + 14 * w + 14] = 1; // a single far pixel
  const map = tf.tensor3d(v, [3, h, w]);
  const largest = await values(await boxFromMap(map));
  assert.deepEqual(largest.slice(0, 4), [2, 3, 6, 8]);
  assert.deepEqual(largest.slice(4, 8), [0, 0, 16, 16]); // flat map: the whole image
  assert.deepEqual(largest.slice(8), [1, 0, 9, 7]); // 8-connected L
  const all = await values(await boxFromMap(map, { region: "all" }));
  assert.deepEqual(all.slice(0, 4), [2, 3, 12, 12]);
  assert.deepEqual(all.slice(8), [1, 0, 15, 15]);
  // A threshold below the noise keeps every pixel of image 0.
  const low = await values(await boxFromMap(map, { fraction: 0.01, region: "all" }));
  assert.deepEqual(low.slice(0, 4), [0, 0, 16, 16]);
  await assert.rejects(() => boxFromMap(map, { fraction: 0 }), /fraction 0 must be in \(0, 1\]/);
  await assert.rejects(
    () => boxFromMap(map, { region: "peak" as "all" }),
    /unknown region "peak"; use one of largest, all/,
  );
  const flat = tf.zeros([1, 4, 4, 1]);
  await assert.rejects(() => boxFromMap(flat as unknown as tf.Tensor3D), /give maps \[n, h, w\]/);
  tf.dispose([map, flat]);
  assert.equal(tf.memory().numTensors, before);
});
