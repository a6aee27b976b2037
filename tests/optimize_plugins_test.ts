import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { disposeImages, imagesFromPixels } from "../core/inputs.ts";
import type { AnyPlugin } from "../core/plugin.ts";
import { resolveParams } from "../core/params.ts";
import { runPlugin } from "./_run.ts";
import { classModel } from "../plugins/optimize/class_model.ts";
import { visualize } from "../plugins/optimize/visualize.ts";
import { deepDream } from "../plugins/optimize/deep_dream.ts";
import { invert } from "../plugins/optimize/invert.ts";

// WASM: the CPU backend's conv gradients are several times slower.
await initBackend(Deno.env.get("CONVLENS_BACKEND") ?? "wasm", { quiet: true });

const net = await loadNet(new URL("../models/mnist/", import.meta.url).pathname);
const digits = await heldOutDigits({ count: 2 });
const images = imagesFromPixels(net, digits.images, digits.labels);

globalThis.addEventListener("unload", () => {
  disposeImages(images);
  net.dispose();
});

async function run(plugin: AnyPlugin, params: Record<string, unknown>, seed = 0) {
  const before = tf.memory().numTensors;
  const r = await runPlugin(net, images, plugin, params, [], seed);
  const p = resolveParams(plugin.name, plugin.params, params, net.layers.map((l) => l.name));
  const want = plugin.resultShape!(net, p, images);
  for (const [name, shape] of Object.entries(want)) {
    assert.deepEqual(r.tensors[name]?.shape, shape, `${plugin.name}: tensor ${name}`);
  }
  assert.equal(tf.memory().numTensors, before + Object.keys(r.tensors).length, "no leaks");
  return r;
}

Deno.test("class-model: the built-in MNIST model gives each class model its class with p > 0.99", async () => {
  const r = await run(classModel, { steps: 60 });
  const rows = r.tables[0].rows;
  console.log(
    "class-model p_y:",
    rows.map((row) => `${row[0]}: ${Number(row[3]).toFixed(4)}`).join(", "),
  );
  assert.equal(rows.length, 10);
  for (const row of rows) assert.ok(Number(row[3]) > 0.99, `class ${row[0]}: p = ${row[3]}`);
  // One batch from zeros: the images differ per class.
  const imgs = r.tensors.images;
  const d = tf.tidy(() => imgs.slice([0], [1]).sub(imgs.slice([1], [1])).abs().max().dataSync()[0]);
  assert.ok(d > 0);
  assert.ok(r.image("class-models"));
  r.dispose();
});

Deno.test("invert: the first conv layer reconstructs the digit; the error rises with depth", async () => {
  const r = await run(invert, { steps: 120, starts: 2 });
  const rows = r.tables[0].rows as [string, number, number, number][];
  console.log("invert (layer, feature error, pixel error, pixel correlation):");
  for (const row of rows) {
    console.log(
      `  ${row[0]}: ${row[1].toExponential(2)} ${row[2].toFixed(4)} ${row[3].toFixed(4)}`,
    );
  }
  const by = Object.fromEntries(rows.map((row) => [row[0], row]));
  assert.deepEqual(rows.map((row) => row[0]), [
    "conv1",
    "conv2",
    "conv3",
    "conv4",
    "fc1",
    "logits",
  ]);
  assert.ok(by.conv1[3] > 0.9, `conv1 correlation ${by.conv1[3]}`);
  // Pixel error: conv1 <= conv4 < fc1 < logits within noise; the dense layers lose the digit.
  assert.ok(by.conv1[2] < by.conv4[2], "conv4 loses more than conv1");
  assert.ok(by.conv4[2] < by.fc1[2], "fc1 loses more than conv4");
  assert.ok(by.fc1[3] < 0.9 && by.logits[3] < 0.9, "dense layers do not give back the digit");
  assert.deepEqual(r.tensors.reconstructions.shape, [6, 2, 28, 28, 1]);
  r.dispose();
});

Deno.test("deep-dream raises the energy of a lower and a higher layer, side by side", async () => {
  const r = await run(deepDream, { steps: 5, octaves: 2 });
  assert.equal(r.figures.layers, "conv1,conv4");
  for (const row of r.tables[0].rows) assert.ok(Number(row[3]) > 1, `${row[0]}: ratio ${row[3]}`);
  const img = r.image("dreams")!;
  assert.ok(img.width > img.height * 2, "input and two dreams in a row");
  r.dispose();
});

Deno.test("visualize: channels, neurons, classes and the Fourier image; same seed, same image", async () => {
  const a = await run(visualize, { units: [0, 3], steps: 8 }, 5);
  const b = await run(visualize, { units: [0, 3], steps: 8 }, 5);
  const c = await run(visualize, { units: [0, 3], steps: 8 }, 6);
  const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => x.sub(y).abs().max().dataSync()[0]);
  assert.equal(diff(a.tensors.images, b.tensors.images), 0, "same seed, same image");
  assert.ok(diff(a.tensors.images, c.tensors.images) > 0, "another seed, another image");
  for (const r of [a, b, c]) r.dispose();
  for (
    const params of [
      {
        target: "neuron",
        layer: "conv2",
        units: [1, 2],
        steps: 4,
        clipNorm: 10,
        clipContribution: 10,
      },
      { target: "class", units: [3], steps: 4, param: "fourier" },
      { target: "neuron", layer: "fc1", units: [7], steps: 4 },
    ]
  ) {
    const r = await run(visualize, params);
    assert.ok(r.images.length === 1);
    r.dispose();
  }
});

Deno.test("optimize plugins reject bad input with clear errors", async () => {
  const before = tf.memory().numTensors;
  await assert.rejects(
    () => runPlugin(net, images, visualize, { layer: "conv2", units: [16] }),
    /unit 16 is outside layer "conv2", which has 16 channels \(0 to 15\)/,
  );
  await assert.rejects(
    () => runPlugin(net, images, visualize, { layer: "conv9" }),
    /no layer "conv9"/,
  );
  await assert.rejects(
    () => runPlugin(net, images, deepDream, { layers: "conv1,nope" }),
    /no layer "nope"; give comma-separated names/,
  );
  await assert.rejects(
    () => runPlugin(net, images, classModel, { classes: [10] }),
    /Class index 10 is out of range/,
  );
  for (const plugin of [classModel, visualize, deepDream, invert] as AnyPlugin[]) {
    await assert.rejects(
      () => runPlugin(net, images, plugin, { steps: 0 }),
      /--steps .* must be an integer from 1/,
    );
  }
  await assert.rejects(
    () => runPlugin(net, images, invert, { image: 5 }),
    /image 5 does not exist; there are 2 input images/,
  );
  assert.equal(tf.memory().numTensors, before);
});
