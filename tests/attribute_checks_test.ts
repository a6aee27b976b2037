/**
 * The attribution checks on the built-in models: integrated gradients' completeness
 * on the MNIST model, the deletion metric (saliency order beats random order) on
 * held-out digits, the pointing game (maps peak inside the digit's box at least
 * twice as often as a random pixel) on held-out canvases with the canvas model,
 * and the model-randomization sanity check (which must leave the model as it
 * was). Run on fewer images than the plugins' defaults to stay quick; the
 * plugins' own results hold the full figures:
 *
 * ```sh
 * deno task lens pointing-game --model canvas
 * deno task lens deletion
 * deno task lens sanity-check
 * deno task lens integrated-gradients --steps 256
 * ```
 *
 * A check whose model is not trained yet (no `model.json`) is skipped, and says so.
 * `CONVLENS_MODELS` points at another folder of built-in models.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { definePlugin } from "../core/plugin.ts";
import { Result } from "../core/result.ts";
import {
  deconvnetAttribution,
  gradCamAttribution,
  guidedBackpropAttribution,
  integrateGradients,
  predictedClasses,
  saliencyAttribution,
} from "../plugins/attribute/mod.ts";

const MODELS = Deno.env.get("CONVLENS_MODELS") ?? new URL("../models", import.meta.url).pathname;
const BACKEND = Deno.env.get("CONVLENS_BACKEND") ?? "wasm";

async function trained(name: string): Promise<string | undefined> {
  const dir = `${MODELS}/${name}`;
  try {
    await Deno.stat(`${dir}/model.json`);
    return dir;
  } catch {
    console.warn(
      `attribute_checks: skipping the ${name} checks: ${dir}/model.json does not exist yet ` +
        `(train it with scripts/train_${name}.ts)`,
    );
    return undefined;
  }
}

const mnistDir = await trained("mnist");
const canvasDir = await trained("canvas");

Deno.test({
  name: "integrated gradients: completeness error under 1% with 256 steps on the MNIST model",
  ignore: !mnistDir,
  async fn() {
    const lens = await Lens.open({ model: mnistDir, backend: BACKEND, quiet: true, count: 1 });
    try {
      const { images } = await heldOutDigits({ count: 4 });
      const before = tf.memory().numTensors;
      const target = await predictedClasses(lens.net, images);
      for (const rule of ["trapezoid"] as const) {
        const ig = await integrateGradients(lens.net, images, target, {
          steps: 256,
          rule,
          batchSize: 128,
        });
        tf.dispose([ig.attribution, ig.baseline]);
        const worst = Math.max(...ig.completenessError);
        console.log(`IG ${rule} 256 steps: worst completeness error ${worst.toExponential(2)}`);
        assert.ok(worst < 0.01, `${rule}: completeness errors ${ig.completenessError}`);
      }
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      images.dispose();
    } finally {
      lens.dispose();
    }
  },
});

const fashionDir = await trained("fashion");

Deno.test({
  name: "deletion: saliency beats random order; integrated gradients beat the model-free orders",
  ignore: !mnistDir || !fashionDir,
  async fn() {
    for (
      const [dir, methods] of [[mnistDir, "saliency,integrated-gradients"], [
        fashionDir,
        "integrated-gradients",
      ]]
    ) {
      const lens = await Lens.open({ model: dir, backend: BACKEND, quiet: true, count: 1 });
      try {
        const before = tf.memory().numTensors;
        const r = await lens.run("deletion", { methods, count: 50, steps: 10 });
        console.log(r.tables[0].rows.map((row) => row.join(" ")).join("\n"));
        const f = r.figures as Record<string, number>;
        const ig = f["integrated-gradients"];
        // Deleting the brightest pixels first needs no model and is hard to beat
        // when deletion paints black; the path integral from black beats it.
        const free = Math.min(f.brightness, f.edges);
        assert.ok(ig < 0.95 * free, `${dir}: IG AUC ${ig} vs model-free ${free}`);
        assert.ok(ig < 0.6 * f.random, `${dir}: IG AUC ${ig} vs random ${f.random}`);
        if (f.saliency !== undefined) {
          assert.ok(
            f.saliency < 0.6 * f.random,
            `saliency AUC ${f.saliency} vs random ${f.random}`,
          );
        }
        r.dispose();
        assert.equal(tf.memory().numTensors, before, "tensors leaked");
      } finally {
        lens.dispose();
      }
    }
  },
});

Deno.test({
  name: "pointing game: maps peak in the digit's box at least twice as often as a random pixel",
  ignore: !canvasDir,
  async fn() {
    const lens = await Lens.open({ model: canvasDir, backend: BACKEND, quiet: true, count: 1 });
    try {
      const before = tf.memory().numTensors;
      const methods = ["saliency", "guided-backprop", "grad-cam", "guided-grad-cam"];
      const r = await lens.run("pointing-game", {
        methods: methods.join(","),
        count: 100,
        show: 0,
      });
      console.log(r.tables[0].rows.map((row) => row.join(" ")).join("\n"));
      const f = r.figures as Record<string, number>;
      for (const m of methods) {
        assert.ok(f[m] >= 2 * f.random, `${m}: hit rate ${f[m]} vs random ${f.random}`);
      }
      r.dispose();
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
    } finally {
      lens.dispose();
    }
  },
});

Deno.test({
  name: "sanity check: cascading randomization changes saliency maps and restores the model",
  ignore: !mnistDir,
  async fn() {
    const lens = await Lens.open({ model: mnistDir, backend: BACKEND, quiet: true, count: 1 });
    try {
      const model = lens.net.model as tf.LayersModel;
      const weightsBefore = model.getWeights().map((w) => Array.from(w.dataSync()));
      const before = tf.memory().numTensors;
      const r = await lens.run("sanity-check", {
        methods: "saliency,guided-backprop,grad-cam,deconvnet,integrated-gradients",
        count: 6,
      });
      console.log(r.tables[0].rows.map((row) => row.join(" ")).join("\n"));
      const f = r.figures as Record<string, number>;
      // A method that explains the model: once every layer is random its maps
      // share less with the trained maps than two same-class maps share.
      for (const m of ["saliency", "grad-cam", "deconvnet"]) {
        assert.ok(
          f[`${m}.all`] < f[`${m}.reference`] - 0.15,
          `${m}: ${f[`${m}.all`]} after randomization vs same-class ${f[`${m}.reference`]}`,
        );
      }
      // The paper's failures: guided backprop and (gradient x input) integrated
      // gradients keep showing the input when the model is gone.
      for (const m of ["guided-backprop", "integrated-gradients"]) {
        assert.ok(
          f[`${m}.all`] > f["saliency.all"] + 0.2,
          `${m} should survive randomization: ${f[`${m}.all`]} vs saliency ${f["saliency.all"]}`,
        );
      }
      r.dispose();
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      const weightsAfter = model.getWeights().map((w) => Array.from(w.dataSync()));
      assert.deepEqual(weightsAfter, weightsBefore, "the model's weights were not restored");
    } finally {
      lens.dispose();
    }
  },
});

Deno.test({
  name: "saliency, guided backprop, deconvnet and Grad-CAM agree on WASM and CPU (MNIST model)",
  ignore: !mnistDir,
  async fn() {
    const methods = [
      saliencyAttribution,
      guidedBackpropAttribution,
      deconvnetAttribution,
      gradCamAttribution,
    ];
    const out: Record<string, Float32Array[]> = {};
    const asked = tf.getBackend();
    try {
      for (const backend of ["cpu", "wasm"]) {
        await initBackend(backend, { quiet: true });
        const net = await loadNet(mnistDir!);
        const { images, labels } = await heldOutDigits({ count: 6 });
        out[backend] = [];
        for (const m of methods) {
          const a = await m.attribute(net, images, labels);
          out[backend].push((await a.data()) as Float32Array);
          a.dispose();
        }
        images.dispose();
        net.dispose();
      }
    } finally {
      await initBackend(asked, { quiet: true });
    }
    methods.forEach((m, k) => {
      const want = out.cpu[k], got = out.wasm[k];
      let err = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      assert.ok(scale > 0 && err <= 1e-4 * scale, `${m.name}: max error ${err} of ${scale}`);
    });
  },
});

/** An "attribution" that always points at the top-left pixel, where no digit box is. */
const cornerMap = definePlugin({
  name: "corner-map",
  family: "attribute",
  summary: "a map peaked at pixel (0, 0)",
  params: {
    class: { type: "numbers", default: [], help: "ignored" },
    render: { type: "boolean", default: false, help: "ignored" },
  },
  run(ctx) {
    const { height, width, channels } = ctx.net.input;
    const n = ctx.images.x.shape[0];
    const a = tf.tidy(() =>
      tf.pad(tf.ones([n, 1, 1, channels]), [[0, 0], [0, height - 1], [0, width - 1], [0, 0]])
    );
    return Promise.resolve(new Result("corner-map", "corner").tensor("attribution", a));
  },
});

Deno.test({
  name: "pointing game scores the map's own peak: a map peaked off every box never hits",
  ignore: !canvasDir,
  async fn() {
    const lens = await Lens.open({ model: canvasDir, backend: BACKEND, quiet: true, count: 1 });
    lens.use(cornerMap);
    try {
      const r = await lens.run("pointing-game", { methods: "corner-map", count: 30, show: 0 });
      const f = r.figures as Record<string, number>;
      // The brightest pixel (no model) finds most digits: a game that scored the
      // image instead of the map would give the corner map that rate.
      assert.ok(f.brightest > 0.5, `brightest pixel ${f.brightest}`);
      assert.ok(f["corner-map"] <= 0.05, `corner map hit rate ${f["corner-map"]}`);
      r.dispose();
    } finally {
      lens.dispose();
    }
  },
});
