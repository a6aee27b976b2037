/**
 * Nested models, the Keras transfer-learning shape: a functional base (convs, a
 * depthwise conv with multiplier 2 and batch norm) used as one layer of a
 * Sequential with a new head. Its layers are listed and addressed by path
 * (`base/conv2`) and behave as in the same layers built flat.
 *
 * By hand, for a 16x16x3 input: conv1 3x3 3->8 same gives 16*16*8*9*3 = 55,296
 * multiply-adds, dw 3x3 stride 2 (8 channels x 2) gives 8*8*16*9 = 9,216, conv2
 * 1x1 16->12 gives 8*8*12*16 = 12,288 and the head 12->4 gives 48: 76,848 in all.
 */
import { cli } from "./_cli.ts";
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { receptiveFields } from "../core/receptive_field.ts";
import { gradCamMap } from "../plugins/attribute/grad_cam.ts";
import { guidedBackpropAttribution } from "../plugins/attribute/guided_backprop.ts";
import { summary } from "../plugins/design/summary.ts";
import { modelCosts } from "../plugins/design/costs.ts";
import { filters } from "../plugins/inspect/filters.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { noLeak } from "./_nets.ts";
import { runPlugin } from "./_run.ts";
import { saveLayersModel } from "../core/load.ts";
import { encodePng } from "../core/images/codecs.ts";
import { Lens } from "../lens.ts";

await tf.setBackend("cpu");

/** The base's layers, shared by the nested model and the flat one. */
function baseLayers(): tf.layers.Layer[] {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return [
    tf.layers.conv2d({
      filters: 8,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      name: "conv1",
      kernelInitializer: init(1),
    }),
    tf.layers.batchNormalization({ name: "bn1" }),
    tf.layers.depthwiseConv2d({
      kernelSize: 3,
      strides: 2,
      depthMultiplier: 2,
      padding: "same",
      activation: "relu",
      name: "dw",
      depthwiseInitializer: init(2),
    }),
    tf.layers.conv2d({
      filters: 12,
      kernelSize: 1,
      activation: "relu",
      name: "conv2",
      kernelInitializer: init(3),
    }),
  ];
}

function chain(x: tf.SymbolicTensor, layers: tf.layers.Layer[]): tf.SymbolicTensor {
  for (const l of layers) x = l.apply(x) as tf.SymbolicTensor;
  return x;
}

/** The nested transfer model, its base and the same layers built flat. */
function models(): { nested: tf.LayersModel; base: tf.LayersModel; flat: tf.LayersModel } {
  const inner = baseLayers();
  const bx = tf.input({ shape: [16, 16, 3] });
  const base = tf.model({ inputs: bx, outputs: chain(bx, inner), name: "base" });
  // Batch-norm statistics away from 0 and 1, so that they matter.
  const bn = inner[1];
  bn.setWeights(
    bn.getWeights().map((w, i) =>
      tf.tidy(() =>
        tf.randomUniform(w.shape, i === 3 ? 0.5 : -0.5, i === 3 ? 2 : 0.5, "float32", i)
      )
    ),
  );
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" });
  const head = tf.layers.dense({
    units: 4,
    activation: "softmax",
    name: "head",
    kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
  });
  const nested = tf.sequential({ layers: [base, gap, head] });
  const fx = tf.input({ shape: [16, 16, 3] });
  const flat = tf.model({ inputs: fx, outputs: chain(fx, [...inner, gap, head]) });
  return { nested, base, flat };
}

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => a.sub(b).abs().max());
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

Deno.test("Net lists a nested model's layers by path, its own name giving its output", () => {
  const { nested } = models();
  const net = Net.fromModel(nested);
  assert.deepEqual(net.layers.map((l) => l.name), [
    "input",
    "base/conv1",
    "base/bn1",
    "base/dw",
    "base/conv2",
    "base",
    "gap",
    "head",
  ]);
  assert.deepEqual(net.layer("base/conv1").inputs, ["input"]);
  assert.deepEqual(net.layer("base").inputs, ["base/conv2"]);
  assert.deepEqual(net.layer("gap").inputs, ["base"]);
  assert.deepEqual(net.layer("base/dw").outputShape, [8, 8, 16]);
  assert.equal(net.layer("base/dw").role, "depthwise");
  assert.deepEqual(
    net.convLayers().map((l) => l.name),
    ["base/conv1", "base/dw", "base/conv2"],
  );
  net.dispose();
});

Deno.test("Taps and edits on base/conv2 equal the base model's own activations", async () => {
  const { nested, base } = models();
  const net = Net.fromModel(nested);
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 5);
  await noLeak(async () => {
    const own = base.predict(x) as tf.Tensor;
    const ref = nested.predict(x) as tf.Tensor;
    const r = net.forward(x, { taps: ["base/conv2", "base"] });
    assert.ok(await maxDiff(own, r.taps["base/conv2"]) < 1e-5);
    assert.ok(await maxDiff(own, r.taps.base) < 1e-5);
    assert.ok(await maxDiff(ref, r.output) < 1e-5);
    // Zeroing the base's last conv leaves the head with its bias alone.
    const e = net.forward(x, { edits: { "base/conv2": (a) => tf.zerosLike(a) } });
    const headOnly = tf.tidy(() => {
      const z = tf.zeros([2, 1, 1, 12]);
      const pooled = nested.getLayer("gap").apply(z) as tf.Tensor;
      return nested.getLayer("head").apply(pooled) as tf.Tensor;
    });
    assert.ok(await maxDiff(headOnly, e.output) < 1e-5);
    const stopped = net.forward(x, { taps: ["base/dw"], stopAtTaps: true });
    assert.deepEqual(stopped.taps["base/dw"].shape, [2, 8, 8, 16]);
    tf.dispose([own, ref, r.output, e.output, headOnly, ...Object.values(r.taps)]);
    tf.dispose(Object.values(stopped.taps));
  });
  x.dispose();
  net.dispose();
});

Deno.test("Guided backprop through nested ReLUs equals the flat model's", async () => {
  const { nested, flat } = models();
  const a = Net.fromModel(nested);
  const b = Net.fromModel(flat);
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 6) as tf.Tensor4D;
  await noLeak(async () => {
    const ga = await guidedBackpropAttribution.attribute(a, x, [1, 2]);
    const gb = await guidedBackpropAttribution.attribute(b, x, [1, 2]);
    const peak = tf.tidy(() => gb.abs().max());
    const scale = (await peak.data())[0];
    peak.dispose();
    assert.ok(scale > 0, "the flat model's guided backprop is not all zero");
    assert.ok(await maxDiff(ga, gb) < 1e-4 * scale + 1e-7);
    tf.dispose([ga, gb]);
  });
  x.dispose();
  a.dispose();
});

Deno.test("Grad-CAM reaches a layer inside the base and equals the flat model's", async () => {
  const { nested, flat } = models();
  const a = Net.fromModel(nested);
  const b = Net.fromModel(flat);
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  await noLeak(async () => {
    const ca = gradCamMap(a, x, [0], { layer: "base/dw" });
    const cb = gradCamMap(b, x, [0], { layer: "dw" });
    assert.deepEqual(ca.shape, [1, 8, 8]);
    assert.ok(await maxDiff(ca, cb) < 1e-4);
    tf.dispose([ca, cb]);
  });
  x.dispose();
  a.dispose();
});

Deno.test("summary counts a nested base's parameters, multiply-adds and receptive fields", async () => {
  const { nested, flat } = models();
  const net = Net.fromModel(nested);
  const counts = modelCosts(net);
  assert.equal(counts.params, nested.countParams());
  assert.equal(counts.params, 672);
  assert.equal(counts.multiplyAdds, 76_848);
  const rf = receptiveFields(net).get("base/conv2")!;
  const flatRf = receptiveFields(Net.fromModel(flat)).get("conv2")!;
  assert.deepEqual(rf, flatRf);
  assert.deepEqual(rf.size, [5, 5]);
  assert.deepEqual(rf.jump, [2, 2]);
  const pixels = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  const images = imagesFromPixels(net, pixels);
  const r = await runPlugin(net, images, summary);
  assert.equal(r.figures.multiplyAdds, 76_848);
  assert.equal(r.figures.params, 672);
  tf.dispose([pixels, images.x]);
  r.dispose();
  net.dispose();
});

Deno.test("filters reports a depthwise layer's C x m one-channel filters", async () => {
  const { nested } = models();
  const net = Net.fromModel(nested);
  const pixels = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  const images = imagesFromPixels(net, pixels);
  await noLeak(async () => {
    const r = await runPlugin(net, images, filters, { layer: "base/dw" });
    assert.equal(r.figures.filters, 16);
    assert.equal(r.figures.inputChannels, 1);
    assert.equal(r.figures.kernel, "3x3");
    r.dispose();
  });
  tf.dispose([pixels, images.x]);
  net.dispose();
});

Deno.test("--range, --mean and --std state the input contract; without them one warning names [0, 1]", async () => {
  Deno.env.set("CONVLENS_BACKEND", "cpu");
  const work = await Deno.makeTempDir({ prefix: "convlens_nested_" });
  try {
    const { nested } = models();
    await saveLayersModel(nested, `${work}/model`, { name: "nested" });
    const data = new Uint8ClampedArray(16 * 16 * 4).map((_, i) => (i * 31) % 256);
    await Deno.writeFile(`${work}/x.png`, await encodePng({ width: 16, height: 16, data }));
    const base = ["summary", "--model", `${work}/model`, "--input", `${work}/x.png`];
    const bare = await cli([...base, "--out", `${work}/a`]);
    assert.equal(bare.code, 0, bare.err);
    const warned = bare.err.split("\n").filter((l) => l.includes("input contract"));
    assert.equal(warned.length, 1, bare.err);
    assert.match(warned[0], /\[0, 1\].*--range.*--mean.*--std/);
    const stated = await cli([
      ...base,
      "--out",
      `${work}/b`,
      "--range=-1,1",
      "--mean",
      "0.5,0.5,0.5",
      "--std",
      "2",
    ]);
    assert.equal(stated.code, 0, stated.err);
    assert.doesNotMatch(stated.err, /input contract/);
    for (const bad of [["--range", "1,0"], ["--range", "0"], ["--std", "0"], ["--mean", "a"]]) {
      const r = await cli([...base, "--out", `${work}/c`, ...bad]);
      assert.equal(r.code, 2, `${bad}: ${r.err}`);
      assert.match(r.err, new RegExp(bad[0]));
    }
    // The flags reach Lens.open's sidecar override, field by field over convlens.json.
    const lens = await Lens.open({
      model: `${work}/model`,
      inputs: [`${work}/x.png`],
      sidecar: { input: { range: [-1, 1], std: [2] } },
      quiet: true,
    });
    assert.deepEqual(lens.net.input.range, [-1, 1]);
    assert.deepEqual(lens.net.input.std, [2]);
    assert.deepEqual(lens.net.input.mean, [0]);
    assert.equal(lens.warnings.length, 0);
    lens.dispose();
    const quiet = await Lens.open({
      model: `${work}/model`,
      inputs: [`${work}/x.png`],
      quiet: true,
    });
    assert.equal(quiet.warnings.filter((w) => w.includes("input contract")).length, 1);
    quiet.dispose();
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
