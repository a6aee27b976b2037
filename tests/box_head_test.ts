import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { arraySource, type DataSource, tensorSource } from "../core/data/source.ts";
import type { Box } from "../core/images/grids.ts";
import { seededRandom } from "../core/random.ts";
import { fit } from "../core/train/fit.ts";
import {
  attachBoxHead,
  boxesToCorners,
  boxFeatures,
  iouSummary,
  trainBoxHead,
  xywhToCorners,
} from "../plugins/train/localize/mod.ts";
import { nestedTransfer } from "./_zoo.ts";

await initBackend("wasm", { quiet: true });

const SIZE = 24;

/**
 * "A bright square on dark": one square of side 5..12 at a random place on a
 * dim noisy background; class 1 for squares of side 9 and more.
 */
function squares(n: number, seed: number): { data: DataSource; boxes: Box[] } {
  const r = seededRandom(seed);
  const px = new Float32Array(n * SIZE * SIZE);
  const boxes: Box[] = [];
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    const side = 5 + r.int(8);
    const y0 = r.int(SIZE - side + 1), x0 = r.int(SIZE - side + 1);
    const img = px.subarray(k * SIZE * SIZE, (k + 1) * SIZE * SIZE);
    for (let i = 0; i < img.length; i++) img[i] = 0.15 * r.next();
    for (let y = y0; y < y0 + side; y++) img.fill(1, y * SIZE + x0, y * SIZE + x0 + side);
    boxes.push({ y0, x0, y1: y0 + side, x1: x0 + side });
    labels.push(side >= 9 ? 1 : 0);
  }
  const data = arraySource({
    name: "squares",
    pixels: px,
    labels,
    shape: [SIZE, SIZE, 1],
    classes: ["small", "large"],
  });
  return { data, boxes };
}

/** A small frozen base (random, seeded weights): conv, pool, conv, flatten, dense softmax. */
function squaresNet(): Net {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        name: "c1",
        inputShape: [SIZE, SIZE, 1],
        filters: 8,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(1),
      }),
      tf.layers.maxPooling2d({ name: "p1", poolSize: 2 }),
      tf.layers.conv2d({
        name: "c2",
        filters: 8,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: init(2),
      }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({ name: "fc", units: 16, activation: "relu", kernelInitializer: init(3) }),
      tf.layers.dense({ name: "out", units: 2, activation: "softmax", kernelInitializer: init(4) }),
    ],
  });
  return Net.fromModel(model, { name: "squares" });
}

async function weightsOf(net: Net): Promise<Float32Array[]> {
  const ws = (net.model as tf.LayersModel).getWeights();
  return await Promise.all(ws.map(async (w) => new Float32Array(await w.data())));
}

async function meanIoU(data: DataSource, boxes: Box[], head: {
  predict: (x: tf.Tensor4D) => Promise<{ probs: tf.Tensor2D; boxes: tf.Tensor2D }>;
}): Promise<{ meanIoU: number; iouAbove05: number }> {
  const { x, y } = await data.batch(Array.from({ length: data.size }, (_, i) => i));
  const p = await head.predict(x);
  const c = tf.tidy(() => xywhToCorners(p.boxes).mul(SIZE)) as tf.Tensor2D;
  const t = boxesToCorners(boxes);
  const s = await iouSummary(c, t);
  tf.dispose([x, y, p.probs, p.boxes, c, t]);
  return s;
}

Deno.test("a box head on a frozen base learns where the bright square is (IoU > 0.7)", async () => {
  const before = tf.memory().numTensors;
  const net = squaresNet();
  const train = squares(600, 1), test = squares(100, 2);
  const frozen = await weightsOf(net);
  const head = await attachBoxHead(net, train.data, train.boxes, "c1", {
    epochs: 25,
    hidden: 64,
    batchSize: 32,
    learningRate: 0.003,
    seed: 3,
  });
  try {
    assert.equal(head.layer, "c1");
    assert.deepEqual(head.grid, [8, 8]); // 24x24 pooled to 8x8
    // flatten 8*8*8 = 512 -> 64 -> 4
    assert.equal(head.params, 512 * 64 + 64 + 64 * 4 + 4);
    const s = await meanIoU(test.data, test.boxes, head);
    assert.ok(s.meanIoU > 0.7, `held-out mean IoU ${s.meanIoU}`);
    assert.ok(s.iouAbove05 > 0.9, `share above 0.5: ${s.iouAbove05}`);
    // The mean box of the training set, what an untrained head outputs, scores far less.
    assert.ok(head.history[0].loss > 3 * head.history.at(-1)!.loss, "the loss fell");
    // The base is bit for bit what it was.
    const after = await weightsOf(net);
    after.forEach((w, i) => assert.deepEqual(w, frozen[i], `weight ${i} changed`));
  } finally {
    head.dispose();
    net.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("per-class and agnostic heads: output shapes, class and box in one call, the localizer model agrees", async () => {
  const before = tf.memory().numTensors;
  const net = squaresNet();
  const train = squares(64, 4);
  const { x, y } = await train.data.batch([0, 1, 2, 3, 4]);
  y.dispose();
  for (const [layer, perClass] of [["c1", true], ["fc", false], ["c2", false]] as const) {
    const head = await attachBoxHead(net, train.data, train.boxes, layer, {
      perClass,
      epochs: 2,
      hidden: 8,
      squeeze: 4,
      loss: perClass ? "giou" : "smooth-l1",
    });
    const p = await head.predict(x);
    assert.deepEqual(p.probs.shape, [5, 2]);
    assert.deepEqual(p.boxes.shape, [5, 4]);
    assert.equal(p.classes.length, 5);
    const units = perClass ? 8 : 4;
    assert.equal(head.head.outputs[0].shape[1], units);
    // c1 gives 24x24x8, pooled to 8x8x8, squeezed to 4 channels, then 256 -> 8 -> 8.
    if (layer === "c1") assert.equal(head.params, (8 * 4 + 4) + (8 * 8 * 4 * 8 + 8) + (8 * 8 + 8));
    if (layer === "c2") {
      // 12x12 pooled to 8x8 takes cells of 1 and 2 rows: no Keras layer does that.
      assert.deepEqual(head.grid, [8, 8]);
      assert.throws(() => head.localizer(), /pooled to 8x8 cells of unequal sizes/);
      tf.dispose([p.probs, p.boxes]);
      head.dispose();
      continue;
    }
    // The functional model input -> layer -> head gives the same class and raw box.
    const localizer = head.localizer();
    const [probs, raw] = localizer.predict(x) as tf.Tensor[];
    assert.deepEqual(raw.shape, [5, units]);
    const diff = tf.tidy(() => probs.sub(p.probs).abs().max());
    assert.ok((await diff.data())[0] < 1e-5);
    // A per-class head reads the predicted class's four values out of the 4 x classes.
    const picked = tf.tidy(() => {
      if (!perClass) return raw.clone();
      const r3 = raw.reshape([5, 2, 4]);
      return tf.concat(p.classes.map((c, i) => r3.slice([i, c, 0], [1, 1, 4]).reshape([1, 4])));
    });
    const boxDiff = tf.tidy(() => picked.sub(p.boxes).abs().max());
    assert.ok((await boxDiff.data())[0] < 1e-5, `${layer}: localizer and predict differ`);
    tf.dispose([p.probs, p.boxes, probs, raw, diff, picked, boxDiff]);
    head.dispose();
  }
  tf.dispose(x);
  net.dispose();
  assert.equal(tf.memory().numTensors, before);
});

/** The zoo's base called on a new input inside a functional model (not a Sequential's first layer). */
function functionalNested(): tf.LayersModel {
  const zoo = nestedTransfer();
  const base = zoo.layers[0] as tf.LayersModel;
  zoo.layers[2].dispose(); // the zoo model's own dense head is not used here
  const input = tf.input({ shape: [32, 32, 3] });
  const scaled = tf.layers.rescaling({ scale: 2, name: "scale" }).apply(input) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(
    base.apply(scaled) as tf.SymbolicTensor,
  );
  const out = tf.layers.dense({ units: 2, activation: "softmax", name: "cls" }).apply(g);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
}

Deno.test("a box head attaches inside a nested model by its path, and its localizer runs", async () => {
  const before = tf.memory().numTensors;
  for (const build of [nestedTransfer, functionalNested]) {
    const net = Net.fromModel(build());
    const r = seededRandom(5);
    const n = 16;
    const px = tf.tensor4d(Float32Array.from({ length: n * 32 * 32 * 3 }, () => r.next()), [
      n,
      32,
      32,
      3,
    ]);
    const data = tensorSource(px, Array.from({ length: n }, (_, i) => i % 2));
    const boxes = Array.from({ length: n }, (_, i) => ({ y0: i, x0: 2, y1: i + 10, x1: 20 }));
    const head = await attachBoxHead(net, data, boxes, "base/conv2", { epochs: 1, hidden: 4 });
    const p = await head.predict(px);
    const [probs, raw] = head.localizer().predict(px) as tf.Tensor[];
    const d = tf.tidy(() =>
      raw.sub(p.boxes).abs().max().add(probs.sub(net.model.predict(px) as tf.Tensor).abs().max())
    );
    assert.ok((await d.data())[0] < 1e-5, build.name);
    assert.equal(head.layer, "base/conv2");
    tf.dispose([p.probs, p.boxes, probs, raw, d, px]);
    head.dispose();
    net.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("box heads refuse an unknown attach layer, a bad loss and mismatched boxes clearly", async () => {
  const net = squaresNet();
  const { data, boxes } = squares(8, 6);
  const before = tf.memory().numTensors;
  await assert.rejects(
    () => attachBoxHead(net, data, boxes, "conv9"),
    /Unknown layer "conv9": this model has \d+ layers; use one of: /,
  );
  await assert.rejects(
    () => attachBoxHead(net, data, boxes, "c1", { loss: "iou" as "l2" }),
    /Unknown box loss "iou": use one of l2, smooth-l1, giou/,
  );
  const [f] = await boxFeatures(net, data, ["c2"]);
  await assert.rejects(
    () => trainBoxHead(net, f, boxes.slice(1)),
    /7 boxes for 8 images; give one box each/,
  );
  await assert.rejects(() => boxFeatures(net, data, ["c1"], { grid: 0 }), /grid 0 must be/);
  f.features.dispose();
  assert.equal(tf.memory().numTensors, before);
  net.dispose();
});

Deno.test("fit() trains on a custom loss hook and reports that loss on the validation source", async () => {
  const before = tf.memory().numTensors;
  // Regress the mean pixel of 2x2 images: y = mean(x).
  const r = seededRandom(7);
  const x = tf.tensor4d(Float32Array.from({ length: 64 * 4 }, () => r.next()), [64, 2, 2, 1]);
  const targets = tf.tidy(() => x.mean([1, 2, 3]));
  const data = tensorSource(x, Array(64).fill(0));
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [2, 2, 1] }),
      tf.layers.dense({ units: 1, kernelInitializer: "zeros" }),
    ],
  });
  const loss = (out: tf.Tensor, _y: tf.Tensor1D, indices: readonly number[]) =>
    tf.tidy(() =>
      out.reshape([-1]).sub(tf.gather(targets, Int32Array.from(indices))).square().mean()
    ) as tf.Scalar;
  const { history } = await fit(model, data, {
    epochs: 30,
    batchSize: 16,
    schedule: { learningRate: 0.05 },
    loss,
    validation: data,
  });
  assert.ok(Number.isNaN(history[0].accuracy));
  assert.equal(history[0].valAccuracy, undefined);
  assert.ok(history.at(-1)!.valLoss! < 0.1 * history[0].loss, "the loss fell tenfold");
  // valLoss is the hook's loss over the whole source with the final weights.
  const all = Array.from({ length: 64 }, (_, i) => i);
  const direct = tf.tidy(() => loss(model.predict(x) as tf.Tensor, tf.zeros([64]), all));
  assert.ok(Math.abs((await direct.data())[0] - history.at(-1)!.valLoss!) < 1e-6);
  tf.dispose([direct, x, targets]);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});
