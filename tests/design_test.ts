/**
 * The design family against golden values and hand-computed answers: VGG16,
 * ResNet-50, AlexNet v2 and MobileNetV2 parameters, multiply-adds and receptive
 * fields as published; the lecture's small-filter table from built layers; each
 * layer type's cost by hand; the effective receptive field of a linear stack,
 * where it is a known binomial; summary on a model without images.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { receptiveFields } from "../core/receptive_field.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { Lens } from "../lens.ts";
import { exportGraphModel } from "../scripts/graph_export.ts";
import { xceptionLike } from "./_zoo.ts";
import {
  alexnetV2,
  applyLayers,
  bottleneck,
  effectiveReceptiveField,
  factorized,
  largeConv,
  layerCost,
  layerLatencies,
  measureBlock,
  mobilenetV2,
  modelCosts,
  resnet50,
  stacked3x3,
  vgg16,
} from "../plugins/design/mod.ts";

await initBackend("wasm", { quiet: true });

const rfOf = (net: Net, layer: string) => receptiveFields(net).get(layer)!;

Deno.test("VGG16 without top: 14,714,688 parameters, 15.35 G multiply-adds at 224, RF 212 at block5_pool", () => {
  const model = vgg16();
  try {
    const net = Net.fromModel(model);
    const costs = modelCosts(net);
    assert.equal(costs.params, 14_714_688);
    assert.equal(costs.params, model.countParams());
    // Conv multiply-adds by hand: sum over the 13 convs of H*W*Cout*9*Cin.
    const convs: [number, number, number][] = [
      [224, 3, 64],
      [224, 64, 64],
      [112, 64, 128],
      [112, 128, 128],
      [56, 128, 256],
      [56, 256, 256],
      [56, 256, 256],
      [28, 256, 512],
      [28, 512, 512],
      [28, 512, 512],
      [14, 512, 512],
      [14, 512, 512],
      [14, 512, 512],
    ];
    const byHand = convs.reduce((s, [hw, cin, cout]) => s + hw * hw * cout * 9 * cin, 0);
    assert.equal(costs.multiplyAdds, byHand);
    assert.equal((costs.multiplyAdds / 1e9).toFixed(2), "15.35");
    assert.deepEqual(costs.notCounted, []);
    const rf = rfOf(net, "block5_pool");
    assert.deepEqual(rf.size, [212, 212]);
    assert.deepEqual(rf.jump, [32, 32]);
  } finally {
    model.dispose();
  }
});

Deno.test("ResNet-50 (v1): RF 483 at conv5_block3_out, Keras' 25,636,712 parameters with its top", () => {
  const model = resnet50({ top: true });
  try {
    const net = Net.fromModel(model);
    assert.equal(modelCosts(net).params, 25_636_712);
    const rf = rfOf(net, "conv5_block3_out");
    assert.deepEqual(rf.size, [483, 483]);
    assert.deepEqual(rf.jump, [32, 32]);
    // ~3.9 G multiply-adds as published for v1 (torchvision's v1.5 is 4.1 G).
    const g = modelCosts(net).multiplyAdds / 1e9;
    assert.ok(g > 3.8 && g < 3.95, `${g} G multiply-adds`);
  } finally {
    model.dispose();
  }
});

Deno.test("AlexNet v2: RF 195 at pool5; MobileNetV2: 3,538,984 parameters (3,504,872 trainable)", () => {
  const alex = alexnetV2();
  const mobile = mobilenetV2({ top: true });
  try {
    assert.deepEqual(rfOf(Net.fromModel(alex), "pool5").size, [195, 195]);
    const net = Net.fromModel(mobile);
    assert.equal(modelCosts(net).params, 3_538_984);
    const trainable = mobile.trainableWeights.reduce(
      (s, w) => s + w.read().size,
      0,
    );
    assert.equal(trainable, 3_504_872);
    // Published: 300 M multiply-adds at 224.
    const m = modelCosts(net).multiplyAdds / 1e6;
    assert.ok(m > 295 && m < 305, `${m} M multiply-adds`);
  } finally {
    alex.dispose();
    mobile.dispose();
  }
});

Deno.test("stack-compare: the lecture's table read off built layers, on a non-square input", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1 });
  const [c, h, w] = [16, 10, 12];
  const r = await lens.run("stack-compare", { channels: c, height: h, width: w });
  try {
    const f = r.figures;
    assert.equal(f.weights7x7, 49 * c * c);
    assert.equal(f.weights3x3Stack, 27 * c * c);
    assert.equal(f.macs7x7, 49 * h * w * c * c);
    assert.equal(f.macs3x3Stack, 27 * h * w * c * c);
    assert.equal(f.rf7x7, 7);
    assert.equal(f.rf3x3Stack, 7);
    assert.equal(f.nonlinearities7x7, 1);
    assert.equal(f.nonlinearities3x3Stack, 3);
    assert.equal(f.weights3x3, 9 * c * c);
    assert.equal(f.weightsBottleneck, 3.25 * c * c);
    assert.equal(f.macsBottleneck, 3.25 * h * w * c * c);
    assert.equal(f.weightsFactorized, 6 * c * c);
    assert.equal(r.notes.length, 0, r.notes.join(" "));
    const five = await lens.run("stack-compare", { channels: 4, height: 8, width: 8, stack: 2 });
    assert.equal(five.figures.weights5x5, 25 * 16);
    assert.equal(five.figures.rf5x5, 5);
    assert.equal(five.figures.rf3x3Stack, 5);
    five.dispose();
  } finally {
    r.dispose();
    lens.dispose();
  }
});

Deno.test("the builders' blocks keep H x W x C, receptive fields 2n+1 and N, and survive a save and load", async () => {
  const input = tf.input({ shape: [9, 11, 6] });
  let x = applyLayers(stacked3x3(2, { filters: 6, name: "s", seed: 1 }), input);
  x = applyLayers(bottleneck({ filters: 6, name: "b", seed: 2 }), x);
  x = applyLayers(factorized(5, { filters: 6, name: "f", seed: 3 }), x);
  const model = tf.model({ inputs: input, outputs: x });
  assert.deepEqual(model.outputs[0].shape, [null, 9, 11, 6]);
  const net = Net.fromModel(model);
  // 5 (two 3x3) + 2 (bottleneck's 3x3) + 4 (1x5 + 5x1 add 4 each way).
  assert.deepEqual(rfOf(net, "f_conv2").size, [11, 11]);
  assert.deepEqual(rfOf(net, "f_conv1").size, [7, 11]);
  const dir = await Deno.makeTempDir();
  try {
    await saveLayersModel(model, dir, {});
    const loadedNet = await loadNet(dir);
    const loaded = loadedNet.model as tf.LayersModel;
    const probe = tf.randomUniform([2, 9, 11, 6], 0, 1, "float32", 5);
    const a = model.predict(probe) as tf.Tensor, b = loaded.predict(probe) as tf.Tensor;
    const diff = tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
    assert.ok(diff < 1e-6, `loaded model differs by ${diff}`);
    tf.dispose([probe, a, b]);
    loadedNet.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
  assert.throws(() => largeConv(4, { filters: 2 }), /positive odd number/);
  assert.throws(() => stacked3x3(0, { filters: 2 }), /from 1 to 32/);
  assert.throws(() => bottleneck({ filters: 0 }), /filters must be a positive/);
});

/** A custom layer no cost rule knows. */
class Doubler extends tf.layers.Layer {
  static className = "Doubler";
  override call(x: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mul(Array.isArray(x) ? x[0] : x, 2);
  }
  override getClassName(): string {
    return "Doubler";
  }
}

Deno.test("every layer type's cost by hand; an unknown type is flagged, never a silent zero", () => {
  const input = tf.input({ shape: [8, 6, 4] });
  const conv = tf.layers.conv2d({
    name: "conv",
    filters: 5,
    kernelSize: [3, 2],
    strides: 2,
    padding: "same",
    activation: "relu",
  })
    .apply(input) as tf.SymbolicTensor; // 4x3x5
  const dw = tf.layers.depthwiseConv2d({
    name: "dw",
    kernelSize: 3,
    depthMultiplier: 2,
    padding: "same",
    useBias: false,
  })
    .apply(conv) as tf.SymbolicTensor; // 4x3x10
  const sep = tf.layers.separableConv2d({
    name: "sep",
    filters: 7,
    kernelSize: 3,
    depthMultiplier: 2,
    padding: "same",
  })
    .apply(conv) as tf.SymbolicTensor; // 4x3x7
  const bn = tf.layers.batchNormalization({ name: "bn" }).apply(sep) as tf.SymbolicTensor;
  const proj = tf.layers.conv2d({ name: "proj", filters: 7, kernelSize: 1, useBias: false }).apply(
    dw,
  ) as tf.SymbolicTensor;
  const add = tf.layers.add({ name: "add" }).apply([bn, proj]) as tf.SymbolicTensor;
  const pool = tf.layers.maxPooling2d({ name: "pool", poolSize: 2, padding: "same" }).apply(
    add,
  ) as tf.SymbolicTensor; // 2x2x7
  const odd = new Doubler({ name: "odd" }).apply(pool) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(odd) as tf.SymbolicTensor;
  const drop = tf.layers.dropout({ name: "drop", rate: 0.5 }).apply(gap) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ name: "dense", units: 3 }).apply(drop) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: dense });
  try {
    const costs = modelCosts(Net.fromModel(model));
    const c = (n: string) => costs.perLayer.get(n)!;
    assert.equal(c("conv").multiplyAdds, 4 * 3 * 5 * (3 * 2 * 4));
    assert.equal(c("conv").flops, 2 * 4 * 3 * 5 * 24 + 2 * 60); // + bias + relu per element
    assert.equal(c("dw").multiplyAdds, 4 * 3 * 10 * 9);
    assert.equal(c("dw").flops, 2 * 4 * 3 * 10 * 9);
    // Depthwise 3x3 at multiplier 2 (5 -> 10), then pointwise 10 -> 7.
    assert.equal(c("sep").multiplyAdds, 4 * 3 * (5 * 2 * 9 + 10 * 7));
    assert.equal(c("bn").flops, 2 * 4 * 3 * 7);
    assert.equal(c("bn").multiplyAdds, 0);
    assert.equal(c("add").flops, 4 * 3 * 7);
    assert.equal(c("pool").flops, 2 * 2 * 7 * 4);
    assert.equal(c("gap").flops, 2 * 2 * 7);
    assert.equal(c("drop").flops, 0);
    assert.equal(c("drop").counted, true);
    assert.equal(c("dense").multiplyAdds, 7 * 3);
    assert.equal(c("odd").counted, false);
    assert.match(c("odd").rule, /not counted: Doubler/);
    assert.deepEqual(costs.notCounted, ["odd (Doubler)"]);
    const sum = [...costs.perLayer.values()].reduce((s, v) => s + v.multiplyAdds, 0);
    assert.equal(costs.multiplyAdds, sum);
    assert.equal(costs.params, model.countParams());
    // A dense layer over a sequence counts every position.
    assert.equal(
      layerCost(
        { name: "d", type: "Dense", inputs: ["x"], outputShape: [5, 3], params: 15, role: "dense" },
        [[5, 4]],
      ).multiplyAdds,
      5 * 4 * 3,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("the effective receptive field of three linear 3x3 box filters is the binomial [1,3,6,7,6,3,1]^2", async () => {
  const model = tf.sequential({
    layers: [0, 1, 2].map((i) =>
      tf.layers.conv2d({
        name: `c${i}`,
        inputShape: i === 0 ? [15, 17, 1] : undefined,
        filters: 1,
        kernelSize: 3,
        padding: "same",
        useBias: false,
        kernelInitializer: "ones",
      })
    ),
  });
  const net = Net.fromModel(model);
  const x = tf.randomUniform([2, 15, 17, 1], 0, 1, "float32", 3) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const e80 = await effectiveReceptiveField(net, "c2", x, { mass: 0.8 });
  const e95 = await effectiveReceptiveField(net, "c2", x);
  const e40 = await effectiveReceptiveField(net, "c2", x, { mass: 0.4 });
  try {
    // Mass within Chebyshev radius d: (sum of the central 2d+1 taps / 27)^2 = .067, .495, .857, 1.
    assert.equal(e40.size, 3);
    assert.equal(e80.size, 5);
    assert.equal(e95.size, 7);
    assert.equal(e95.theoretical, 7);
    assert.deepEqual(e95.center, [7, 8]);
    assert.ok(Math.abs(e95.spread - Math.SQRT2) < 1e-6, `spread ${e95.spread}`);
    const taps = [1, 3, 6, 7, 6, 3, 1];
    const row = tf.tidy(() => e95.map.slice([7, 5], [1, 7]).dataSync());
    for (let i = 0; i < 7; i++) assert.ok(Math.abs(row[i] - (7 * taps[i]) / 49) < 1e-5);
    assert.equal(tf.tidy(() => e95.map.slice([0, 0], [4, 17]).sum().dataSync()[0]), 0);
  } finally {
    tf.dispose([e40.map, e80.map, e95.map]);
  }
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(effectiveReceptiveField(net, "c2", x, { mass: 1 }), /mass must be between/);
  x.dispose();
  model.dispose();
});

Deno.test("the effective receptive field grows slower than the theoretical one in a deep random ReLU stack (Luo et al.)", async () => {
  const model = tf.sequential({
    layers: Array.from({ length: 12 }, (_, i) =>
      tf.layers.conv2d({
        name: `c${i + 1}`,
        inputShape: i === 0 ? [48, 48, 4] : undefined,
        filters: 4,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
        kernelInitializer: tf.initializers.heNormal({ seed: 10 + i }),
      })),
  });
  const net = Net.fromModel(model);
  const x = tf.randomUniform([8, 48, 48, 4], 0, 1, "float32", 4) as tf.Tensor4D;
  const shallow = await effectiveReceptiveField(net, "c2", x);
  const deep = await effectiveReceptiveField(net, "c12", x);
  tf.dispose([shallow.map, deep.map, x]);
  model.dispose();
  assert.equal(shallow.theoretical, 5);
  assert.equal(deep.theoretical, 25);
  const [a, b] = [shallow.size / shallow.theoretical, deep.size / deep.theoretical];
  assert.ok(b < 0.8 * a, `ERF/RF ${a.toFixed(2)} at depth 2, ${b.toFixed(2)} at depth 12`);
});

Deno.test("layer latencies: one per computing layer, a nested model timed through its own layers", async () => {
  const inner = tf.sequential({
    name: "base",
    layers: [
      tf.layers.conv2d({ name: "conv1", inputShape: [12, 12, 3], filters: 4, kernelSize: 3 }),
      tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }),
    ],
  });
  const input = tf.input({ shape: [12, 12, 3] });
  const feats = inner.apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "head", units: 2 }).apply(
    tf.layers.flatten({ name: "flat" }).apply(feats),
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const net = Net.fromModel(model);
  const x = tf.ones([1, 12, 12, 3]) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const { perLayer, forwardMs } = await layerLatencies(net, x, { repeats: 2 });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual([...perLayer.keys()], ["base/conv1", "base/pool", "flat", "head"]);
  for (const ms of perLayer.values()) assert.ok(ms >= 0 && Number.isFinite(ms));
  assert.ok(forwardMs > 0);
  await assert.rejects(layerLatencies(net, x, { repeats: 0 }), /repeats must be/);
  x.dispose();
  model.dispose();
});

Deno.test("summary runs on a 224x224 model with no images and no data; image plugins then say what to pass", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [224, 224, 3],
        filters: 4,
        kernelSize: 3,
        strides: 8,
        activation: "relu",
      }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 3, activation: "softmax" }),
    ],
  });
  const dir = await Deno.makeTempDir();
  await saveLayersModel(model, dir, { input: { range: [0, 1] } });
  model.dispose();
  const lens = await Lens.open({ model: dir, backend: "wasm", quiet: true });
  try {
    assert.equal(lens.images.x.shape[0], 0);
    const before = tf.memory().numTensors;
    const r = await lens.run("summary", { repeats: 1, erfSamples: 2 });
    assert.equal(r.figures.input, "224x224x3");
    assert.equal(r.figures.multiplyAdds, 28 * 28 * 4 * 27 + 4 * 3);
    assert.ok(Number(r.figures.forwardMs) > 0);
    assert.equal(r.tables[1].rows.length, 1);
    assert.ok(r.image("effective_rf"));
    r.dispose();
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(lens.run("saliency"), /No input images for "saliency".*--input/);
  } finally {
    lens.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("measureBlock reads a block's figures off the built model", () => {
  const b = measureBlock("1x3 + 3x1", factorized(3, { filters: 8, useBias: false }), [5, 7, 8]);
  assert.deepEqual(b, {
    block: "1x3 + 3x1",
    weights: 6 * 64,
    params: 6 * 64,
    multiplyAdds: 5 * 7 * 6 * 64,
    receptiveField: 3,
    nonlinearities: 2,
  });
});

Deno.test("stack-experiment trains the four block designs: parameters by the lecture's formulas, accuracy above chance", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1 });
  const before = tf.memory().numTensors;
  const c = 8;
  const r = await lens.run("stack-experiment", {
    channels: c,
    trainCount: 1000,
    testCount: 500,
    epochs: 3,
    seeds: 1,
    learningRate: 0.005,
  });
  try {
    // Stem 3x3 (1 -> C) with biases, a softmax over 10 classes, two blocks.
    const outside = 9 * c + c + 10 * c + 10;
    const blocks = {
      "7x7": 49 * c * c + c,
      "3x3-stack": 27 * c * c + 3 * c,
      bottleneck: c * (c / 2) + 27 * (c / 2) ** 2 + (c / 2) * c + 4 * (c / 2) + c,
      factorized: 14 * c * c + 2 * c,
    };
    for (const [variant, weights] of Object.entries(blocks)) {
      assert.equal(r.figures[`params.${variant}`], outside + 2 * weights, variant);
      const acc = Number(r.figures[`accuracy.${variant}`]);
      assert.ok(acc > 0.2, `${variant}: test accuracy ${acc} after three epochs on 1,000 images`);
    }
    // At 14x14 then 7x7: multiply-adds of the 7x7 net are 49/27 of the stack's in the blocks.
    const blockMacs = (w: number) => (14 * 14 + 7 * 7) * w;
    assert.equal(
      Number(r.figures["macs.7x7"]) - Number(r.figures["macs.3x3-stack"]),
      blockMacs(49 * c * c) - blockMacs(27 * c * c),
    );
    assert.equal(r.tables[0].rows.length, 4);
    assert.ok(r.plots.some((p) => p.name === "accuracy_vs_cost"));
    r.dispose();
    assert.equal(tf.memory().numTensors, before);
  } finally {
    r.dispose();
    lens.dispose();
  }
});

Deno.test("a GraphModel converted from a LayersModel costs the same multiply-adds, every op counted", async () => {
  const model = xceptionLike();
  const dir = await Deno.makeTempDir();
  try {
    await exportGraphModel(model, dir);
    const graph = await loadNet(dir);
    const a = modelCosts(Net.fromModel(model)), b = modelCosts(graph);
    assert.equal(b.multiplyAdds, a.multiplyAdds);
    assert.equal(b.params, a.params);
    assert.deepEqual(b.notCounted, []);
    // The graph's softmax and fused ops differ in bookkeeping, not in work.
    assert.ok(Math.abs(b.flops - a.flops) / a.flops < 1e-3, `${a.flops} vs ${b.flops}`);
    graph.dispose();
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
