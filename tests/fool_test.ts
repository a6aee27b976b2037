import assert from "node:assert/strict";
import { datasetFor } from "../core/data/dataset_for.ts";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { Net } from "../core/net.ts";
import { checkParams, type Context, type InputImages, type Plugin } from "../core/plugin.ts";
import type { ParamSchema } from "../core/params.ts";
import { ParamError } from "../core/params.ts";
import { seededRandom } from "../core/random.ts";
import type { Result } from "../core/result.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { disposeImages, imagesFromPixels } from "../core/inputs.ts";
import { adversarial, attack } from "../plugins/fool/adversarial.ts";
import { foolByEvolution, foolingImages } from "../plugins/fool/fooling_images.ts";
import { shallowFooling } from "../plugins/fool/shallow_fooling.ts";
import { pngRoundTrip } from "../plugins/fool/_common.ts";

await initBackend("wasm", { quiet: true });

const mnist = await loadNet(new URL("../models/mnist", import.meta.url).pathname);

/** A context like the Lens gives a plugin, without the Lens. */
function context(net: Net, images: InputImages, seed = 0): Context {
  return {
    net,
    images,
    rng: seededRandom(seed),
    seed,
    progress() {},
    warn() {},
    run: () => Promise.reject(new Error("not in this test")),
    runOn: () => Promise.reject(new Error("not in this test")),
    data: () => datasetFor(net),
  };
}

/** Checks the parameters as the Lens does, then runs the plugin. */
async function runPlugin<S extends ParamSchema>(
  plugin: Plugin<S>,
  net: Net,
  images: InputImages,
  raw: Record<string, unknown> = {},
  seed = 0,
): Promise<Result> {
  const params = checkParams(plugin, net, raw);
  return await plugin.run(context(net, images, seed), params);
}

async function digits(count: number, offset = 0): Promise<InputImages> {
  const d = await heldOutDigits({ count, offset });
  return imagesFromPixels(mnist, d.images, d.labels);
}

/** A small untrained ConvNet on 28x28x1, for the fast contract checks. */
function tinyNet(): Net {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 4,
        kernelSize: 3,
        strides: 2,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
        name: "c1",
      }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({
        units: 10,
        activation: "softmax",
        kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }),
        name: "d",
      }),
    ],
  });
  return Net.fromModel(model);
}

Deno.test("adversarial: PGD L-inf eps 0.3 with 40 steps fools >= 95% of 100 held-out digits and beats FGSM", async () => {
  const images = await digits(100);
  const before = tf.memory().numTensors;
  const pgd = await runPlugin(adversarial, mnist, images, {
    method: "pgd",
    epsilon: 0.3,
    steps: 40,
  });
  const fgsm = await runPlugin(adversarial, mnist, images, { method: "fgsm", epsilon: 0.3 });
  const f = pgd.figures;
  assert.ok((f.attacked as number) >= 95, `attacked ${f.attacked}`);
  assert.ok((f.successRate as number) >= 0.95, `PGD success ${f.successRate}`);
  assert.ok(
    f.successRate > fgsm.figures.successRate,
    `PGD ${f.successRate} vs FGSM ${fgsm.figures.successRate}`,
  );
  assert.ok(Math.abs((f.meanLinf as number) - 0.3) < 1e-3, `L-inf ${f.meanLinf}`);
  assert.ok((f.pngSuccessRate as number) >= 0.9, `after PNG ${f.pngSuccessRate}`);
  assert.ok((f.confidenceBefore as number) > 0.9 && (f.labelProbabilityAfter as number) < 0.1);
  assert.deepEqual(pgd.tensors.adversarial.shape, [100, 28, 28, 1]);
  const rMax = tf.tidy(() => pgd.tensors.perturbation.abs().max().dataSync()[0]);
  assert.ok(rMax <= 0.3 + 1e-6, `|r| ${rMax}`);
  assert.ok(pgd.image("examples"));
  pgd.dispose();
  fgsm.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("adversarial: every Szegedy smallest targeted attack succeeds, with its mean L2", async () => {
  const images = await digits(4, 100);
  const before = tf.memory().numTensors;
  const r = await runPlugin(adversarial, mnist, images, { method: "szegedy", searchSteps: 5 });
  assert.equal(r.figures.successRate, 1);
  assert.equal(r.figures.attacked, 4);
  const l2 = r.figures.meanL2Successful as number;
  assert.ok(l2 > 0 && l2 < 5, `mean L2 ${l2}`);
  // Targeted at the next class: the table's "after" column is label + 1.
  for (const row of r.tables[0].rows) assert.equal(row[5], ((row[1] as number) + 1) % 10);
  r.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("fooling-images: gradient ascent from mean + noise passes 99.99% for every class", async () => {
  const images = await digits(8);
  const before = tf.memory().numTensors;
  const r = await runPlugin(foolingImages, mnist, images, { method: "gradient" });
  assert.equal(r.figures.classesReached, 10);
  assert.ok((r.figures.minConfidence as number) >= 0.9999);
  assert.deepEqual(r.tensors.images.shape, [10, 28, 28, 1]);
  r.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("fooling-images: evolution passes 99.5% for >= 8 of 10 classes within 200 generations of 16 children per class", async () => {
  // Budget: 160 random images, then at most 200 generations x 16 children x 10 classes
  // (32,160 net evaluations).
  const images = await digits(2);
  const before = tf.memory().numTensors;
  const r = await runPlugin(foolingImages, mnist, images, {
    method: "evolution",
    generations: 200,
    population: 16,
  });
  assert.ok((r.figures.classesReached as number) >= 8, `reached ${r.figures.classesReached}`);
  assert.ok((r.figures.totalEvaluations as number) <= 32_160);
  for (const row of r.tables[0].rows) {
    if ((row[2] as number) >= 0.995) {
      assert.ok((row[3] as number) >= 0 && (row[3] as number) <= 200);
    }
  }
  r.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("shallow-fooling: the linear classifier is fooled at least as easily as the ConvNet", async () => {
  const images = await digits(2);
  const before = tf.memory().numTensors;
  const r = await runPlugin(shallowFooling, mnist, images, {
    count: 200,
    epsilons: [0, 0.1, 0.25],
    epochs: 2,
    show: 3,
  });
  const f = r.figures;
  assert.ok((f["linear.accuracy"] as number) > 0.8, `linear accuracy ${f["linear.accuracy"]}`);
  assert.equal(f["linear.successAt0"], 0);
  assert.ok((f["linear.successAt0.25"] as number) >= 0.9);
  assert.ok((f["linear.successAt0.1"] as number) >= (f["convnet.successAt0.1"] as number));
  assert.deepEqual(r.tensors.success.shape, [2, 3]);
  assert.ok(r.plots.some((q) => q.name === "success") && r.image("weights") && r.image("examples"));
  r.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  disposeImages(images);
});

Deno.test("adversarial: bad epsilon, steps and target classes give clear errors", async () => {
  const net = tinyNet();
  const images = imagesFromPixels(
    net,
    tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 3) as tf.Tensor4D,
  );
  const before = tf.memory().numTensors;
  await assert.rejects(
    () => runPlugin(adversarial, net, images, { epsilon: 1.5 }),
    (e: Error) => e instanceof RangeError && /Epsilon 1.5 is outside \[0, 1\]/.test(e.message),
  );
  await assert.rejects(
    () => runPlugin(adversarial, net, images, { norm: "l2", epsilon: 100 }),
    /Epsilon 100 is outside \[0, 28\]/,
  );
  await assert.rejects(() => runPlugin(adversarial, net, images, { epsilon: -0.1 }), ParamError);
  await assert.rejects(() => runPlugin(adversarial, net, images, { steps: 0 }), /--steps.*>= 1/);
  await assert.rejects(() => runPlugin(adversarial, net, images, { target: 10 }), /Class index 10/);
  await assert.rejects(() => runPlugin(adversarial, net, images, { target: -3 }), ParamError);
  await assert.rejects(
    () => attack(net, images.pixels, [0, 1], { steps: 0 }),
    /Steps must be a positive/,
  );
  await assert.rejects(() => attack(net, images.pixels, [0, 1], { epsilon: -1 }), /Epsilon -1/);
  await assert.rejects(
    () => attack(net, images.pixels, [0, 1], { targets: [3, 12] }),
    /Class index 12/,
  );
  await assert.rejects(() => attack(net, images.pixels, [0], {}), /1 labels for 2 images/);
  await assert.rejects(
    () => attack(net, images.pixels, [0, 1], { method: "szegedy" }),
    /targeted/,
  );
  await assert.rejects(
    () => runPlugin(foolingImages, net, images, { classes: [12] }),
    /Class index 12/,
  );
  await assert.rejects(() => runPlugin(foolingImages, net, images, { steps: 0 }), ParamError);
  await assert.rejects(
    () => runPlugin(shallowFooling, net, images, { epsilons: [0.1, 2] }),
    /Epsilon 2 is outside \[0, 1\]/,
  );
  assert.equal(tf.memory().numTensors, before, "tensors leaked on errors");
  disposeImages(images);
  net.dispose();
});

Deno.test("fool plugins: deterministic under a seed, no leaks, documented shapes", async () => {
  const net = tinyNet();
  const images = imagesFromPixels(
    net,
    tf.randomUniform([3, 28, 28, 1], 0, 1, "float32", 5) as tf.Tensor4D,
    [1, 2, 3],
  );
  const cases: [Plugin<ParamSchema>, Record<string, unknown>][] = [
    [adversarial as Plugin<ParamSchema>, { method: "pgd", steps: 3 }],
    [adversarial as Plugin<ParamSchema>, { method: "pgd", norm: "l2", epsilon: 2, steps: 3 }],
    [adversarial as Plugin<ParamSchema>, { method: "fgsm", target: -2 }],
    [adversarial as Plugin<ParamSchema>, { method: "szegedy", steps: 4, searchSteps: 2 }],
    [foolingImages as Plugin<ParamSchema>, { method: "gradient", steps: 3, classes: [0, 4] }],
    [foolingImages as Plugin<ParamSchema>, { method: "evolution", generations: 3, population: 4 }],
  ];
  for (const [plugin, raw] of cases) {
    const before = tf.memory().numTensors;
    const a = await runPlugin(plugin, net, images, raw, 7);
    const b = await runPlugin(plugin, net, images, raw, 7);
    const shapes = plugin.resultShape!(net, checkParams(plugin, net, raw), images);
    for (const [name, shape] of Object.entries(shapes)) {
      assert.deepEqual(a.tensors[name].shape, shape, `${plugin.name} ${name}`);
      assert.deepEqual(
        a.tensors[name].dataSync(),
        b.tensors[name].dataSync(),
        `${plugin.name} ${JSON.stringify(raw)} not deterministic`,
      );
    }
    assert.deepEqual(a.figures, b.figures);
    a.dispose();
    b.dispose();
    assert.equal(tf.memory().numTensors, before, `${plugin.name} ${JSON.stringify(raw)} leaked`);
  }
  // Another seed starts PGD elsewhere.
  const c = await runPlugin(adversarial, net, images, { steps: 1 }, 1);
  const d = await runPlugin(adversarial, net, images, { steps: 1 }, 2);
  assert.notDeepEqual(c.tensors.adversarial.dataSync(), d.tensors.adversarial.dataSync());
  c.dispose();
  d.dispose();
  disposeImages(images);
  net.dispose();
});

Deno.test("foolByEvolution() scores each generation as one batch and counts evaluations", async () => {
  const net = tinyNet();
  const before = tf.memory().numTensors;
  let generations = 0;
  const out = await foolByEvolution(net, [0, 1, 2], {
    generations: 5,
    population: 4,
    confidence: 0.999999,
    onGeneration: () => generations++,
  });
  assert.equal(generations, 5);
  assert.equal(out.totalEvaluations, 3 * 4 * 6);
  assert.deepEqual(out.evaluations, [24, 24, 24]);
  assert.deepEqual(out.iterations, [-1, -1, -1]);
  out.images.dispose();
  assert.equal(tf.memory().numTensors, before);
  net.dispose();
});

Deno.test("the PNG round trip gives the 8-bit quantized image back", async () => {
  const values = [0, 0.5, 0.2, 1, 0.001, 0.9999, 0.3, 0.7];
  const x = tf.tensor4d(values, [2, 2, 2, 1]);
  const t = await pngRoundTrip(x);
  const back = Array.from(await t.data());
  back.forEach((v, i) =>
    assert.ok(Math.abs(v - Math.round(Math.fround(values[i]) * 255) / 255) < 1e-6)
  );
  tf.dispose([x, t]);
});
