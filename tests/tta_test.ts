import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { Lens } from "../lens.ts";
import { evaluate } from "../core/train/metrics.ts";
import { mnistSource } from "../core/builtin/mnist.ts";
import { subset } from "../core/data/source.ts";
import {
  combineViews,
  distinctViews,
  tenCropViews,
  testTimePredict,
  type TestTimeView,
  testTimeViews,
  tta,
  viewWindow,
} from "../plugins/train/marginalize/test_time_crops.ts";
import { sequentialNet } from "./_nets.ts";

await initBackend("wasm", { quiet: true });

/** A view computed the naive way: zero-pad, resize with aligned corners, slice, reverse. */
function naiveView(x: tf.Tensor4D, v: TestTimeView, pad: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  const win = viewWindow(v, h, w, pad);
  return tf.tidy(() => {
    const padded = x.pad([[0, 0], [pad, pad], [pad, pad], [0, 0]]);
    const big = tf.image.resizeBilinear(
      padded as tf.Tensor4D,
      [win.resizedHeight, win.resizedWidth],
      true,
    );
    const crop = big.slice([0, win.top, win.left, 0], [-1, h, w, -1]);
    return (v.flip ? tf.reverse(crop, 2) : crop) as tf.Tensor4D;
  });
}

Deno.test("testTimeViews builds every view in one crop that equals pad, resize, crop and flip done one by one", async () => {
  const x = tf.randomUniform([2, 9, 7, 2], 0, 1, "float32", 5) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  for (const pad of [0, 2]) {
    const views = tenCropViews([1, 1.3, 1.75]);
    const all = testTimeViews(x, views, pad);
    assert.deepEqual(all.shape, [views.length * 2, 9, 7, 2]);
    for (const [v, view] of views.entries()) {
      const got = all.slice([2 * v, 0, 0, 0], [2, -1, -1, -1]);
      const want = naiveView(x, view, pad);
      const diff = tf.tidy(() => got.sub(want).abs().max());
      const d = (await diff.data())[0];
      assert.ok(d < 1e-5, `pad ${pad} view ${JSON.stringify(view)} differs by ${d}`);
      tf.dispose([got, want, diff]);
    }
    all.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("at scale 1 the corner crops of the padded image are the pixel-exact shifts by pad", async () => {
  const x = tf.randomUniform([1, 6, 6, 1], 0, 1, "float32", 2) as tf.Tensor4D;
  const views = tenCropViews([1]);
  const all = testTimeViews(x, views, 2);
  const padded = x.pad([[0, 0], [2, 2], [2, 2], [0, 0]]);
  // bottom-right, not flipped: rows 4..9, columns 4..9 of the padded image, i.e. a shift by -2.
  const k = views.findIndex((v) => v.position === "bottom-right" && !v.flip);
  const got = await all.slice([k, 0, 0, 0], [1, -1, -1, -1]).data();
  const want = await padded.slice([0, 4, 4, 0], [1, 6, 6, 1]).data();
  assert.deepEqual(Array.from(got), Array.from(want));
  tf.dispose([x, all, padded]);
});

Deno.test("distinctViews drops the positions that coincide when the crop is the whole image", () => {
  const views = distinctViews(tenCropViews([1, 1.15]), 28, 28, 0);
  // Scale 1 without padding: only the image and its mirror image; 1.15: all ten.
  assert.equal(views.length, 12);
  assert.equal(distinctViews(tenCropViews([1]), 28, 28, 2).length, 10);
  assert.throws(
    () => viewWindow({ scale: 0.5, position: "center", flip: false }, 28, 28, 0),
    /smaller than the 28x28 crop/,
  );
  assert.throws(() => tenCropViews([]), /at least one scale/);
  const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  assert.throws(() => testTimeViews(x, tenCropViews([1]), 1.5), /whole number of pixels/);
  x.dispose();
});

Deno.test("combineViews: mean, geometric mean and max of probabilities as computed by hand", async () => {
  // Three views of one image, two classes.
  const p = tf.tensor3d([[[0.9, 0.1]], [[0.2, 0.8]], [[0.2, 0.8]]]);
  const mean = await combineViews(p, "mean").data();
  const geo = await combineViews(p, "geomean").data();
  const max = await combineViews(p, "max").data();
  const g0 = Math.cbrt(0.9 * 0.2 * 0.2), g1 = Math.cbrt(0.1 * 0.8 * 0.8);
  const close = (a: ArrayLike<number>, b: number[]) =>
    b.forEach((v, i) => assert.ok(Math.abs(a[i] - v) < 1e-6, `${Array.from(a)} vs ${b}`));
  close(mean, [1.3 / 3, 1.7 / 3]);
  close(geo, [g0 / (g0 + g1), g1 / (g0 + g1)]);
  close(max, [0.9 / 1.7, 0.8 / 1.7]);
  // The rules disagree here: the mean and geometric mean pick class 1, the max class 0.
  assert.ok(mean[1] > mean[0] && geo[1] > geo[0] && max[0] > max[1]);
  p.dispose();
});

Deno.test("testTimePredict gives each view's probabilities in batches, as the net gives them view by view", async () => {
  const net = Net.fromModel(sequentialNet(3));
  const x = tf.randomUniform([5, 12, 12, 1], 0, 1, "float32", 9) as tf.Tensor4D;
  const views = tenCropViews([1, 1.2]);
  const before = tf.memory().numTensors;
  const got = testTimePredict(net, x, views, { pad: 1, batchSize: 7 });
  assert.deepEqual(got.shape, [views.length, 5, 5]);
  for (const [v, view] of views.entries()) {
    const want = tf.tidy(() => net.probabilities(naiveView(x, view, 1)));
    const diff = tf.tidy(() =>
      got.slice([v, 0, 0], [1, -1, -1]).squeeze([0]).sub(want).abs().max()
    );
    assert.ok((await diff.data())[0] < 1e-5);
    tf.dispose([want, diff]);
  }
  got.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x]);
  net.dispose();
});

Deno.test("the tta plugin's single accuracy is the model's own, and the table ranks every combination", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1, seed: 1 });
  const before = tf.memory().numTensors;
  const r = await lens.run(tta, { count: 200, scales: [1, 1.15], pad: 2 });
  try {
    const digits = await mnistSource("heldOut");
    const m = await evaluate(
      lens.net.model as tf.LayersModel,
      subset(digits, Array.from({ length: 200 }, (_, i) => i)),
    );
    assert.ok(Math.abs(Number(r.figures.accuracySingle) - m.accuracy) < 1e-9);
    assert.equal(r.figures.views, 20);
    assert.deepEqual(r.tensors.viewProbabilities.shape, [20, 200, 10]);
    const acc = Number(r.figures.accuracyTta);
    assert.ok(acc > 0.8 && acc <= 1, `accuracy ${acc}`);
    // The mean-combined probabilities are the mean of the kept per-view ones.
    const diff = tf.tidy(() =>
      r.tensors.viewProbabilities.mean(0).sub(r.tensors.probabilities).abs().max()
    );
    assert.ok((await diff.data())[0] < 1e-6);
    diff.dispose();
    assert.ok(r.tables[0].rows.length >= 3);
    assert.ok(r.image("disagreement"));
  } finally {
    r.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  lens.dispose();
});
