/**
 * One conformance suite over the registry (Captum-style): every built-in plugin,
 * run on the built-in MNIST model, gives the tensors its `resultShape` documents,
 * is deterministic under a seed, leaves `tf.memory().numTensors` unchanged, and
 * rejects each bad parameter with an error naming it. Adding a plugin adds it
 * here; slow plugins get light parameters in `QUICK`.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";
import { ParamError, type ParamSpec, resolveParams } from "../core/params.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import type { Result } from "../core/result.ts";
import { QUICK } from "./_quick.ts";

const lens = await Lens.open({ backend: "wasm", quiet: true, count: 2, seed: 3 });

/**
 * Result shapes written down by hand for the MNIST model (28x28x1, 16 filters
 * in conv1, a 7x7 last conv grid), 2 images and the QUICK parameters: a check
 * that does not trust the plugin's own `resultShape`.
 */
const IMAGE = [2, 28, 28, 1];
const ATTRIBUTION = { attribution: IMAGE, map: [2, 28, 28] };
const EXPECTED: Record<string, Record<string, number[]>> = {
  summary: {},
  activations: { activations: [28, 28, 16] },
  filters: { weights: [3, 3, 1, 16] },
  // 8x8 squares every 4 pixels: (28 - 8) / 4 + 1 = 6 positions a side.
  occlusion: { probability: [6, 6], activation: [6, 6], classes: [6, 6] },
  saliency: ATTRIBUTION,
  deconvnet: ATTRIBUTION,
  "guided-backprop": ATTRIBUTION,
  smoothgrad: ATTRIBUTION,
  "grad-cam": { ...ATTRIBUTION, cam: [2, 7, 7] },
  "guided-grad-cam": ATTRIBUTION,
  "integrated-gradients": { ...ATTRIBUTION, baseline: IMAGE },
  // Five default methods, two model-free orders and random; 6 images; 4 steps + the start.
  deletion: { auc: [8], curves: [8, 6, 5] },
  "class-model": { images: IMAGE },
  visualize: { images: IMAGE },
  "deep-dream": { dreams: IMAGE },
  // Two layers, one start each.
  invert: { reconstructions: [2, 1, 28, 28, 1] },
  adversarial: { adversarial: IMAGE, perturbation: IMAGE },
  "fooling-images": { images: IMAGE, confidence: [2] },
};

function badValue(spec: ParamSpec): unknown {
  switch (spec.type) {
    case "number":
    case "integer":
      return spec.min !== undefined ? spec.min - 1 : "not-a-number";
    case "boolean":
      return "maybe";
    case "enum":
      return "no-such-choice";
    case "layer":
      return "no-such-layer";
    case "numbers":
      return "a,b";
    default:
      return "";
  }
}

async function snapshot(r: Result): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(r.tensors)) out[k] = Array.from(await t.data());
  return out;
}

for (const plugin of builtinPlugins) {
  const params = QUICK[plugin.name] ?? {};
  Deno.test(`${plugin.name}: documented result shape, deterministic, no leaks`, async () => {
    const before = tf.memory().numTensors;
    const a = await lens.run(plugin, params);
    const b = await lens.run(plugin, params);
    try {
      if (plugin.resultShape) {
        const resolved = resolveParams(
          plugin.name,
          plugin.params,
          params,
          lens.net.layers.map((l) => l.name),
        );
        const expected = plugin.resultShape(lens.net, resolved, lens.images);
        const got = Object.fromEntries(Object.entries(a.tensors).map(([k, t]) => [k, t.shape]));
        assert.deepEqual(got, expected);
      }
      if (EXPECTED[plugin.name]) {
        const got = Object.fromEntries(Object.entries(a.tensors).map(([k, t]) => [k, t.shape]));
        assert.deepEqual(got, EXPECTED[plugin.name], "shapes written down by hand");
      }
      assert.ok(a.images.length + Object.keys(a.figures).length + a.tables.length > 0);
      assert.deepEqual(a.figures, b.figures);
      assert.deepEqual(await snapshot(a), await snapshot(b));
      assert.deepEqual(a.images.map((i) => i.png), b.images.map((i) => i.png));
    } finally {
      a.dispose();
      b.dispose();
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });

  Deno.test(`${plugin.name}: rejects bad parameters with an error naming them`, async () => {
    const before = tf.memory().numTensors;
    await assert.rejects(
      lens.run(plugin, { ...params, noSuchParam: 1 }),
      (e: Error) => e instanceof ParamError && /Unknown parameter --noSuchParam/.test(e.message),
    );
    for (const [name, spec] of Object.entries(plugin.params as Record<string, ParamSpec>)) {
      await assert.rejects(
        lens.run(plugin, { ...params, [name]: badValue(spec) }),
        (e: Error) => e instanceof ParamError && e.message.includes(`--${name}`),
        `${plugin.name} --${name}`,
      );
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  });
}

Deno.test("the registry has unique kebab-case names, summaries and families", () => {
  const names = builtinPlugins.map((p) => p.name);
  assert.equal(new Set(names).size, names.length);
  for (const p of builtinPlugins) {
    assert.match(p.name, /^[a-z][a-z0-9-]*$/);
    assert.ok(p.summary.length > 10 && p.summary.length < 100, p.name);
    assert.ok(["inspect", "attribute", "optimize", "fool", "train", "design"].includes(p.family));
  }
});
