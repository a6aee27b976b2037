import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { disposeImages, imagesFromPixels } from "../core/inputs.ts";
import { adversarial } from "../plugins/fool/adversarial.ts";
import { shallowFooling } from "../plugins/fool/shallow_fooling.ts";
import { runPlugin } from "./_run.ts";

await initBackend("wasm", { quiet: true });

const mnist = await loadNet(new URL("../models/mnist", import.meta.url).pathname);

Deno.test("adversarial with a sweep plots success against epsilon and keys its perturbations", async () => {
  const d = await heldOutDigits({ count: 8 });
  const images = imagesFromPixels(mnist, d.images, d.labels);
  const before = tf.memory().numTensors;
  const r = await runPlugin(mnist, images, adversarial, {
    method: "fgsm",
    epsilon: 0.2,
    sweep: [0, 0.1, 0.3],
    show: 2,
  });
  const plot = r.plots.find((p) => p.name === "success");
  assert.ok(plot, "no success plot");
  assert.match(plot.svg, /attack success \(%\)/);
  const table = r.tables.find((t) => t.caption.startsWith("Success rate against epsilon"))!;
  assert.deepEqual(table.rows.map((row) => row[0]), [0, 0.1, 0.2, 0.3]);
  assert.equal(table.rows[0][1], 0, "nothing is fooled at epsilon 0");
  assert.equal(table.rows[2][1], r.figures.successRate);
  const im = r.image("examples")!;
  assert.equal(im.tiles?.length, 6);
  assert.equal(im.cols, 3);
  assert.deepEqual([im.colorbar?.colormap, im.colorbar?.min, im.colorbar?.max], [
    "coolwarm",
    -1,
    1,
  ]);
  r.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("shallow-fooling plots its linear classifier's learning curves and keys the weights", async () => {
  const d = await heldOutDigits({ count: 2 });
  const images = imagesFromPixels(mnist, d.images, d.labels);
  const r = await runPlugin(mnist, images, shallowFooling, {
    count: 100,
    epsilons: [0, 0.25],
    epochs: 2,
    show: 2,
  });
  assert.ok(r.plots.some((p) => p.name === "linear-loss" && p.svg.includes(">epoch</text>")));
  const w = r.image("weights")!;
  assert.equal(w.colorbar?.colormap, "coolwarm");
  assert.equal(w.colorbar!.min, -w.colorbar!.max, "weights are shown on a scale centred on 0");
  assert.equal(w.tiles?.length, 10);
  assert.equal(r.image("examples")!.tiles?.length, 6);
  r.dispose();
  disposeImages(images);
});
