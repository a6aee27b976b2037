/**
 * The augment plugins on the built-in fashion model, small: augment-effect's
 * plumbing (two arms, seeds, figures, table and plots; not the 2-point target,
 * which is a CLI run), the audit's identities at strength 0, and the grid.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";
import {
  augment,
  augmentAudit,
  augmentEffect,
  smallConvNet,
} from "../plugins/train/augment/mod.ts";

const lens = await Lens.open({ model: "fashion", backend: "wasm", quiet: true, count: 3, seed: 1 });

Deno.test("augment-effect trains both arms per seed and reports mean and std of the test accuracy", async () => {
  const before = tf.memory().numTensors;
  const r = await lens.run(augmentEffect, {
    images: 50,
    epochs: 2,
    seeds: 2,
    testImages: 200,
    batchSize: 25,
  });
  try {
    const rows = r.tables[0].rows;
    assert.equal(rows.length, 2 + 2, "two seeds, mean, std");
    const per = rows.slice(0, 2).map((row) => [Number(row[1]), Number(row[2])]);
    const mean = (k: number) => (per[0][k] + per[1][k]) / 2;
    assert.ok(Math.abs(Number(r.figures.accuracyWithout) - mean(0)) < 1e-12);
    assert.ok(Math.abs(Number(r.figures.accuracyWith) - mean(1)) < 1e-12);
    const sd = Math.abs(per[0][0] - per[1][0]) / Math.SQRT2;
    assert.ok(Math.abs(Number(r.figures.stdWithout) - sd) < 1e-12, "sample std of two runs");
    // 2 epochs on 50 images already beat chance (10%) on the test images.
    for (const [a, b] of per) assert.ok(a > 0.2 && b > 0.15, `${a}, ${b}`);
    // Accuracies are multiples of 1/200: they come from the 200 test images.
    for (const [a] of per) assert.ok(Math.abs(a * 200 - Math.round(a * 200)) < 1e-9);
    assert.deepEqual(r.plots.map((p) => p.name), ["accuracy", "loss"]);
  } finally {
    r.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(lens.run(augmentEffect, { images: 15 }), /multiple of 10/);
});

Deno.test("smallConvNet() is the same net under the same seed", () => {
  const a = smallConvNet(3, [28, 28, 1], 10), b = smallConvNet(3, [28, 28, 1], 10);
  const wa = a.getWeights(), wb = b.getWeights();
  const d = tf.tidy(() => wa.map((w, i) => w.sub(wb[i]).abs().max().dataSync()[0]));
  assert.ok(d.every((v) => v === 0));
  a.dispose();
  b.dispose();
});

Deno.test("augment-audit: at strength 0 nothing flips and the maps agree; flips rise with rotation", async () => {
  const r = await lens.run(augmentAudit, { images: 40, batchSize: 20 });
  try {
    const rows = r.tables[0].rows;
    for (const row of rows.filter((row) => row[1] === 0 || (row[0] === "zoom" && row[1] === 1))) {
      assert.equal(row[3], 0, `${row[0]} at 0 flips nothing`);
      assert.ok(
        Math.abs(Number(row[4]) - 1) < 1e-4 && Math.abs(Number(row[5]) - 1) < 1e-4,
        `${row[0]}`,
      );
    }
    const rot = rows.filter((row) => row[0] === "rotation").map((row) => Number(row[3]));
    assert.ok(rot[rot.length - 1] > rot[1], `rotation flips ${rot}`);
    // A translated map moves with the image: at 30% the moved map correlates better than the map left in place.
    const t = rows.find((row) => row[0] === "translation" && row[1] === 0.3)!;
    assert.ok(Number(t[4]) > Number(t[5]), `translation ${t}`);
    // Photometric transforms leave the map in place: both columns agree.
    for (
      const row of rows.filter((row) =>
        ["brightness", "contrast", "cutout"].includes(String(row[0]))
      )
    ) {
      assert.equal(row[4], row[5]);
    }
    assert.equal(r.plots.length, 2);
  } finally {
    r.dispose();
  }
});

Deno.test("augment draws its grids and fancy PCA's eigen-decomposition of the procedural set", async () => {
  const r = await lens.run(augment, { samples: 3, rgbImages: 32, rgbSize: 24 });
  try {
    assert.deepEqual(r.images.map((i) => i.name), [
      "transforms",
      "mixing",
      "colour",
      "eigenvectors",
      "boxes",
    ]);
    const ev = [1, 2, 3].map((k) => Number(r.figures[`eigenvalue${k}`]));
    assert.ok(ev[0] >= ev[1] && ev[1] >= ev[2] && ev[2] >= 0, `${ev}`);
    const rows = r.tables[0].rows;
    for (const row of rows) {
      const v = row.slice(3).map(Number);
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-3, "unit eigenvectors");
    }
    await assert.rejects(lens.run(augment, { image: 7 }), /image 7 does not exist/);
  } finally {
    r.dispose();
  }
});
