/**
 * Models as people bring them, built in code: a binary classifier with one
 * sigmoid unit (trained a few steps), a multi-label sigmoid head, a model with
 * two outputs, and a feature extractor without a class output.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { tensorSource } from "../core/data/source.ts";
import { fit } from "../core/train/fit.ts";
import { saveLayersModel } from "../core/load.ts";
import { encodePng, tensorToRaw } from "../core/images/codecs.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { classScores } from "../plugins/attribute/targets.ts";
import { Lens } from "../lens.ts";
import { main } from "../scripts/cli.ts";
import { runPlugin } from "./_run.ts";
import { noLeak } from "./_nets.ts";

const S = 12;

await initBackend("wasm", { quiet: true });

function assertAlmostEquals(a: number, b: number, tol: number): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} is not within ${tol} of ${b}`);
}

/** The sum (or max) of |a - b|, read without leaving tensors behind. */
async function total(a: tf.Tensor, b?: tf.Tensor, how: "sum" | "max" = "sum"): Promise<number> {
  const t = tf.tidy(() => {
    const d = (b ? a.sub(b) : a).abs();
    return how === "sum" ? d.sum() : d.max();
  });
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

function escape(s: string): RegExp {
  return new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
}

/** Images with a bright square in the left half (class 1) or the right half (class 0). */
function halves(n: number, seed: number): { x: tf.Tensor4D; y: number[] } {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const data = new Float32Array(n * S * S);
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const left = i % 2 === 0;
    y.push(left ? 1 : 0);
    const r = 2 + Math.floor(rand() * (S - 6));
    const c = (left ? 0 : S / 2) + Math.floor(rand() * (S / 2 - 3));
    for (let j = 0; j < S * S; j++) data[i * S * S + j] = 0.1 * rand();
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) data[i * S * S + (r + a) * S + c + b] = 1;
    }
  }
  return { x: tf.tensor4d(data, [n, S, S, 1]), y };
}

function convBase(seed: number): tf.layers.Layer[] {
  return [
    tf.layers.conv2d({
      inputShape: [S, S, 1],
      filters: 4,
      kernelSize: 3,
      activation: "relu",
      padding: "same",
      name: "conv",
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
    tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }),
    tf.layers.flatten({ name: "flat" }),
  ];
}

/** A binary classifier with one sigmoid unit, trained until it tells the halves apart. */
async function binaryNet(): Promise<Net> {
  const model = tf.sequential({
    layers: [
      ...convBase(3),
      tf.layers.dense({
        units: 1,
        activation: "sigmoid",
        name: "head",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
    ],
  });
  const { x, y } = halves(64, 1);
  try {
    await fit(model, tensorSource(x, y, ["right", "left"]), {
      epochs: 15,
      batchSize: 16,
      schedule: { learningRate: 0.02 },
    });
  } finally {
    x.dispose();
  }
  return Net.fromModel(model, { labels: ["right", "left"] });
}

const binary = await binaryNet();
const held = halves(6, 99);
const images = imagesFromPixels(binary, held.x, held.y);

Deno.test("a binary sigmoid classifier reads as two classes whose softmax is [1 - p, p]", async () => {
  assert.deepEqual(binary.head, "binary");
  assert.deepEqual(binary.numClasses, 2);
  const p = binary.model.predict(images.x) as tf.Tensor;
  const probs = binary.probabilities(images.x);
  const [pv, qv] = [await p.data(), await probs.array()];
  tf.dispose([p, probs]);
  for (let i = 0; i < pv.length; i++) {
    assertAlmostEquals(qv[i][1], pv[i], 1e-5);
    assertAlmostEquals(qv[i][0], 1 - pv[i], 1e-5);
  }
  // Trained, not trivial: every held-out image on its side of 0.5, by a margin.
  for (let i = 0; i < pv.length; i++) {
    assert.ok(held.y[i] === 1 ? pv[i] > 0.6 : pv[i] < 0.4, `image ${i}: p = ${pv[i]}`);
  }
});

Deno.test("saliency, grad-cam and integrated-gradients explain both classes of a binary net", async () => {
  await noLeak(async () => {
    for (const name of ["saliency", "grad-cam", "integrated-gradients"]) {
      const one = await runPlugin(binary, images, name, { class: [1] }, builtinPlugins);
      const zero = await runPlugin(binary, images, name, { class: [0] }, builtinPlugins);
      const key = name === "grad-cam" ? "cam" : "attribution";
      const mass1 = await total(one.tensors[key]);
      const mass0 = await total(zero.tensors[key]);
      // A class-0 score without a gradient (logits [0, z]) gives an all-zero map.
      if (name === "grad-cam") {
        // ReLU'd maps: a class's map may vanish where the other's does not.
        assert.ok(mass1 + mass0 > 1e-6, "grad-cam: empty maps for both classes");
      } else {
        assert.ok(mass1 > 1e-6, `${name}: empty map for class 1`);
        assert.ok(mass0 > 1e-6, `${name}: empty map for class 0`);
      }
      if (name === "integrated-gradients") {
        assert.ok((one.figures.maxCompletenessError as number) < 0.05, "completeness");
      }
      one.dispose();
      zero.dispose();
    }
  });
});

Deno.test("occlusion on a binary net maps a probability that drops, not p = 1 everywhere", async () => {
  await noLeak(async () => {
    const r = await runPlugin(binary, images, "occlusion", { size: 4, stride: 2 }, builtinPlugins);
    const probs = await r.tensors.probability.data();
    const lo = Math.min(...probs), hi = Math.max(...probs);
    // Softmax of one logit is 1 at every position.
    assert.ok(lo < 0.99 && hi - lo > 0.05, `occlusion probabilities ${lo}..${hi}`);
    assert.deepEqual(r.figures.probability as number < 1, true);
    r.dispose();
  });
});

Deno.test("an attack flips a binary net's decisions at the default budget", async () => {
  await noLeak(async () => {
    const r = await runPlugin(binary, images, "adversarial", { epsilon: 0.5 }, builtinPlugins);
    assert.ok((r.figures.attacked as number) >= 5, `attacked ${r.figures.attacked}`);
    assert.ok((r.figures.successRate as number) >= 0.8, `success ${r.figures.successRate}`);
    r.dispose();
  });
});

Deno.test("class-model raises a binary net's class probability", async () => {
  await noLeak(async () => {
    const start = tf.fill([1, S, S, 1], 0.5) as tf.Tensor4D;
    const before = tf.tidy(() => binary.probabilities(binary.fromPixels(start)));
    const p0 = (await before.data())[1];
    tf.dispose([start, before]);
    const r = await runPlugin(
      binary,
      images,
      "class-model",
      { classes: [1], steps: 40 },
      builtinPlugins,
    );
    const after = r.figures.minProbability as number;
    assert.ok(after > Math.max(p0, 0.9), `p before ${p0}, after ${after}`);
    r.dispose();
  });
});

Deno.test("a multi-label sigmoid head scores each unit as a class of its own", async () => {
  const model = tf.sequential({
    layers: [
      ...convBase(5),
      tf.layers.dense({ units: 3, activation: "sigmoid", name: "labels" }),
    ],
  });
  const net = Net.fromModel(model);
  try {
    assert.deepEqual(net.head, "multilabel");
    assert.deepEqual(net.numClasses, 3);
    const imgs = imagesFromPixels(net, held.x.clone(), held.y);
    await noLeak(async () => {
      const p = model.predict(imgs.x) as tf.Tensor;
      const q = net.probabilities(imgs.x);
      const [pv, qv] = [await p.data(), await q.data()];
      tf.dispose([p, q]);
      // Each unit's own sigmoid, not a softmax across the units.
      for (let i = 0; i < pv.length; i++) assertAlmostEquals(qv[i], pv[i], 1e-5);
      const scores = await classScores(net, imgs.x, [2, 2, 2, 2, 2, 2], "prob");
      for (let i = 0; i < 6; i++) assertAlmostEquals(scores[i], pv[i * 3 + 2], 1e-5);
      const r = await runPlugin(
        net,
        imgs,
        "saliency",
        { class: [2], target: "logprob" },
        builtinPlugins,
      );
      assert.ok((await total(r.tensors.attribution)) > 0);
      r.dispose();
    });
    tf.dispose([imgs.x, imgs.pixels]);
  } finally {
    net.dispose();
  }
});

function twoOutputs(): tf.LayersModel {
  const input = tf.input({ shape: [S, S, 1] });
  let h = input as tf.SymbolicTensor;
  for (const l of convBase(7)) h = l.apply(h) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 3, activation: "softmax", name: "kind" }).apply(h);
  const b = tf.layers.dense({ units: 1, activation: "sigmoid", name: "bright" }).apply(h);
  return tf.model({ inputs: input, outputs: [a as tf.SymbolicTensor, b as tf.SymbolicTensor] });
}

Deno.test("a two-output model is explained through the output picked by name or index", async () => {
  const model = twoOutputs();
  assert.throws(() => Net.fromModel(model), escape("pick the one to explain with --output"));
  assert.throws(() => Net.fromModel(model, { output: "nope" }), escape('0 "kind", 1 "bright"'));
  const byName = Net.fromModel(model, { output: "bright" });
  const byIndex = Net.fromModel(model, { output: 0 });
  assert.deepEqual([byName.head, byName.numClasses, byName.output], ["binary", 2, "bright"]);
  assert.deepEqual([byIndex.head, byIndex.numClasses, byIndex.output], ["softmax", 3, "kind"]);
  await noLeak(async () => {
    const [pa, pb] = model.predict(images.x) as tf.Tensor[];
    const qa = byIndex.probabilities(images.x), qb = byName.probabilities(images.x);
    const close = async (u: tf.Tensor, v: tf.Tensor) => {
      const t = tf.tidy(() => u.sub(v).abs().max());
      const d = (await t.data())[0];
      t.dispose();
      assert.ok(d < 1e-5, `differs by ${d}`);
    };
    await close(pa, qa);
    const q1 = qb.slice([0, 1], [-1, 1]);
    await close(pb, q1);
    tf.dispose([pa, pb, qa, qb, q1]);
  });
  model.dispose();
});

Deno.test("--output and the Lens option pick one output of a saved two-output model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveLayersModel(twoOutputs(), `${dir}/model`);
    const png = `${dir}/in.png`;
    const one = held.x.slice([0, 0, 0, 0], [1, -1, -1, -1]).squeeze([0]) as tf.Tensor3D;
    await Deno.writeFile(png, await encodePng(await tensorToRaw(one)));
    one.dispose();
    const lens = await Lens.open({ model: `${dir}/model`, inputs: [png], output: 1, quiet: true });
    try {
      assert.deepEqual([lens.net.head, lens.net.output], ["binary", "bright"]);
    } finally {
      lens.dispose();
    }
    await assert.rejects(
      () => Lens.open({ model: `${dir}/model`, inputs: [png], quiet: true }),
      escape("--output NAME|INDEX"),
    );
    for (const output of ["kind", "1"]) {
      const code = await main([
        "saliency",
        "--model",
        `${dir}/model`,
        "--input",
        png,
        "--output",
        output,
        "--out",
        `${dir}/out-${output}`,
        "--quiet",
      ]);
      assert.deepEqual(code, 0, `--output ${output}`);
    }
    const bad = await main([
      "saliency",
      "--model",
      `${dir}/model`,
      "--input",
      png,
      "--out",
      `${dir}/o`,
      "--quiet",
    ]);
    assert.deepEqual(bad, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a feature extractor takes a channel of its output as the target of gradient methods", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [S, S, 1],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        name: "c1",
      }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, name: "c2" }),
    ],
  });
  const net = Net.fromModel(model);
  const imgs = imagesFromPixels(net, held.x.clone(), held.y);
  try {
    assert.deepEqual([net.head, net.numClasses], ["features", 6]);
    await noLeak(async () => {
      for (const name of ["saliency", "grad-cam", "integrated-gradients"]) {
        const r = await runPlugin(net, imgs, name, { class: [5] }, builtinPlugins);
        const key = name === "grad-cam" ? "cam" : "attribution";
        assert.ok(r.tensors[key].shape[0] === 6, name);
        r.dispose();
      }
      // The channel's spatial mean is the score whose gradient saliency takes.
      const g = tf.grad((x: tf.Tensor) =>
        (model.predict(x) as tf.Tensor).slice([0, 0, 0, 5], [-1, -1, -1, 1]).mean([1, 2, 3]).sum()
      )(imgs.x);
      const r = await runPlugin(net, imgs, "saliency", { class: [5] }, builtinPlugins);
      const d = await total(r.tensors.attribution, g, "max");
      assert.ok(d < 1e-5, `saliency differs from d mean(c2[..., 5]) / dx by ${d}`);
      r.dispose();
      g.dispose();
    });
    await assert.rejects(
      () => runPlugin(net, imgs, "saliency", { class: [6] }, builtinPlugins),
      escape("no class output"),
    );
    await assert.rejects(
      () => runPlugin(net, imgs, "saliency", { class: [1], target: "prob" }, builtinPlugins),
      escape("--class c as channel c"),
    );
    await assert.rejects(
      () => runPlugin(net, imgs, "adversarial", {}, builtinPlugins),
      escape("classifier"),
    );
    await assert.rejects(
      () => runPlugin(net, imgs, "occlusion", {}, builtinPlugins),
      escape("no class output"),
    );
  } finally {
    tf.dispose([imgs.x, imgs.pixels]);
    net.dispose();
  }
});
