/**
 * The `localize` plugin on the built-in canvas model with tiny parameters (the
 * target figures come from the CLI run `deno task lens localize --model canvas`),
 * and its refusal on a model without known boxes.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";

const MODELS = Deno.env.get("CONVLENS_MODELS") ?? new URL("../models", import.meta.url).pathname;
const BACKEND = Deno.env.get("CONVLENS_BACKEND") ?? "wasm";

async function exists(dir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dir}/model.json`);
    return true;
  } catch {
    return false;
  }
}

const canvasDir = `${MODELS}/canvas`;
const TINY = {
  layers: "conv2,pool3,gap",
  train: 300,
  sweepTrain: 200,
  sweepEpochs: 2,
  validation: 40,
  count: 30,
  epochs: 3,
  hidden: 16,
  methods: "grad-cam,occlusion",
  mapCount: 4,
  occlusionStride: 8,
  show: 2,
};

Deno.test({
  name: "localize on the canvas model: sweep table, IoU figures, plot, boxes drawn, no leaks",
  ignore: !(await exists(canvasDir)),
  async fn() {
    const lens = await Lens.open({ model: canvasDir, backend: BACKEND, quiet: true, count: 1 });
    try {
      const before = tf.memory().numTensors;
      const r = await lens.run("localize", TINY);
      const f = r.figures as Record<string, number | string>;
      // The IoU figures are the mean and the share above 0.5 of the per-canvas IoUs.
      const ious = Array.from(await r.tensors.ious.data());
      assert.equal(ious.length, 30);
      const mean = ious.reduce((s, v) => s + v, 0) / ious.length;
      assert.ok(Math.abs((f.meanIoU as number) - mean) < 1e-6);
      assert.equal(f.iouAbove05, ious.filter((v) => v > 0.5).length / 30);
      assert.ok(ious.every((v) => v >= 0 && v <= 1));
      // Even three epochs on 300 canvases beat chance: a box of the mean size placed at
      // random scores well under 0.2 on these canvases.
      assert.ok((f.meanIoU as number) > 0.3, `mean IoU ${f.meanIoU}`);
      assert.ok(["conv2", "pool3", "gap"].includes(f.bestLayer as string));
      assert.ok(["agnostic", "per-class"].includes(f.bestHead as string));
      assert.ok((f.classAccuracy as number) > 0.8, `class accuracy ${f.classAccuracy}`);
      // One row per layer and head, the final head, then one per method and region.
      const rows = r.tables[0].rows;
      assert.equal(rows.length, 3 * 2 + 1 + 2 * 2);
      assert.equal(rows[6][0], f.bestLayer);
      assert.equal(rows[6][1], `${f.bestHead} (final)`);
      assert.equal(rows[6][4], Number((f.meanIoU as number).toFixed(4)));
      assert.deepEqual(rows.slice(0, 6).map((row) => `${row[0]} ${row[1]}`), [
        "conv2 agnostic",
        "conv2 per-class",
        "pool3 agnostic",
        "pool3 per-class",
        "gap agnostic",
        "gap per-class",
      ]);
      // A per-class head has 4 outputs per class: 36 more weights than the agnostic one
      // (hidden 16: 16 x 36 + 36 more parameters).
      assert.equal(Number(rows[1][2]) - Number(rows[0][2]), 16 * 36 + 36);
      for (const m of ["grad-cam", "occlusion"]) {
        assert.ok(f[`meanIoU ${m}`] as number >= 0 && f[`meanIoU ${m}`] as number <= 1);
      }
      assert.ok(r.plots[0].svg.includes("attach layer"));
      assert.ok(r.image("boxes"));
      r.dispose();
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      // Deterministic under the seed.
      const again = await lens.run("localize", { ...TINY, methods: "grad-cam" });
      assert.equal(again.figures.meanIoU, f.meanIoU);
      again.dispose();
      await assert.rejects(
        () => lens.run("localize", { ...TINY, layers: "conv9" }),
        /Unknown layer "conv9"/,
      );
      await assert.rejects(
        () => lens.run("localize", { ...TINY, loss: "iou" }),
        /--loss of localize must be one of l2, smooth-l1, giou/,
      );
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
    } finally {
      lens.dispose();
    }
  },
});

Deno.test({
  name: "localize refuses a model without known boxes and names --model canvas",
  ignore: !(await exists(`${MODELS}/mnist`)),
  async fn() {
    const lens = await Lens.open({ model: `${MODELS}/mnist`, backend: BACKEND, quiet: true });
    try {
      const before = tf.memory().numTensors;
      const r = await lens.run("localize", TINY);
      assert.equal(r.figures.skipped, true);
      assert.match(r.notes.join(" "), /built-in canvas model.*--model canvas/);
      r.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      lens.dispose();
    }
  },
});
