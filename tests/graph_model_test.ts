/**
 * GraphModel support, checked against the LayersModel each graph was exported from
 * (scripts/graph_export.ts): outputs, logits, layer listing, receptive fields, taps,
 * edits, gradients under every ReLU rule, kernels, leaks, the CLI, and the built-in
 * MNIST model.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { type LayerInfo, Net, type Sidecar } from "../core/net.ts";
import { gradient, RELU_RULES } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { receptiveFields } from "../core/receptive_field.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { nestedTransfer } from "./_zoo.ts";
import {
  exportGraphModel,
  graphArtifacts,
  type GraphExportOptions,
} from "../scripts/graph_export.ts";

await initBackend("cpu", { quiet: true });

const TOL = 1e-5;

let seed = 1000;
const kernelInit = () => tf.initializers.glorotUniform({ seed: ++seed });
const smallInit = (lo = -0.2, hi = 0.2) =>
  tf.initializers.randomUniform({ minval: lo, maxval: hi, seed: ++seed });

function conv(
  name: string,
  filters: number,
  kernelSize: number,
  extra: Partial<Parameters<typeof tf.layers.conv2d>[0]> = {},
) {
  return tf.layers.conv2d({
    name,
    filters,
    kernelSize,
    kernelInitializer: kernelInit(),
    biasInitializer: smallInit(),
    ...extra,
  });
}

function batchNorm(name: string) {
  return tf.layers.batchNormalization({
    name,
    gammaInitializer: smallInit(0.5, 1.5),
    betaInitializer: smallInit(),
    movingMeanInitializer: smallInit(),
    movingVarianceInitializer: smallInit(0.5, 2),
  });
}

/** Sequential: fused-relu convs (same/valid, stride, dilation), pools, dense, softmax. */
function sequentialNet(dilation = 2): tf.LayersModel {
  return tf.sequential({
    layers: [
      conv("c1", 6, 3, { inputShape: [16, 16, 3], padding: "same", activation: "relu" }),
      conv("c2", 8, 3, { strides: 2, activation: "relu" }),
      tf.layers.maxPooling2d({ name: "p1", poolSize: 2, padding: "same" }),
      conv("c3", 8, 3, { dilationRate: dilation, padding: "same", activation: "relu" }),
      tf.layers.averagePooling2d({ name: "p2", poolSize: 2 }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({
        name: "fc",
        units: 12,
        activation: "relu",
        kernelInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
      tf.layers.dense({
        name: "out",
        units: 5,
        activation: "softmax",
        kernelInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
    ],
  });
}

/** Functional: BatchNorm, a residual Add, a Concatenate branch, Dropout, a logits layer. */
function functionalNet(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 2], name: "image" });
  const a = conv("a", 6, 3, { padding: "same", activation: "relu" }).apply(
    input,
  ) as tf.SymbolicTensor;
  const bn = batchNorm("bn").apply(a) as tf.SymbolicTensor;
  const b = conv("b", 6, 3, { padding: "same" }).apply(bn) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "res" }).apply([bn, b]) as tf.SymbolicTensor;
  const r = tf.layers.reLU({ name: "res_relu" }).apply(sum) as tf.SymbolicTensor;
  const left = conv("left", 4, 1, { activation: "relu" }).apply(r) as tf.SymbolicTensor;
  const right = conv("right", 4, 3, { padding: "same", activation: "relu" }).apply(
    r,
  ) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: "cat" }).apply([left, right]) as tf.SymbolicTensor;
  const drop = tf.layers.dropout({ name: "drop", rate: 0.5 }).apply(cat) as tf.SymbolicTensor;
  const pool = tf.layers.maxPooling2d({ name: "pool", poolSize: 2 }).apply(
    drop,
  ) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(pool) as tf.SymbolicTensor;
  const logits = tf.layers.dense({
    name: "logits",
    units: 4,
    kernelInitializer: kernelInit(),
    biasInitializer: smallInit(),
  }).apply(gap) as tf.SymbolicTensor;
  const probs = tf.layers.activation({ name: "probs", activation: "softmax" }).apply(logits);
  return tf.model({ inputs: input, outputs: probs as tf.SymbolicTensor, name: "functional" });
}

/** Depthwise convs (multiplier, stride, same/valid), a 1x1 conv and a batch norm after dense. */
function depthwiseNet(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.depthwiseConv2d({
        name: "dw1",
        inputShape: [11, 11, 3],
        kernelSize: 3,
        depthMultiplier: 2,
        strides: 2,
        activation: "relu",
        depthwiseInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
      tf.layers.depthwiseConv2d({
        name: "dw2",
        kernelSize: 3,
        padding: "same",
        depthwiseInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
      conv("pw", 5, 1, { activation: "relu" }),
      tf.layers.flatten({ name: "flat" }),
      tf.layers.dense({
        name: "fc",
        units: 6,
        kernelInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
      batchNorm("bn"),
      tf.layers.activation({ name: "act", activation: "relu" }),
      tf.layers.dense({
        name: "out",
        units: 3,
        activation: "softmax",
        kernelInitializer: kernelInit(),
        biasInitializer: smallInit(),
      }),
    ],
  });
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function assertClose(a: tf.Tensor, b: tf.Tensor, what: string, tol = TOL): void {
  const scale = tf.tidy(() => Math.max(1, tf.max(tf.abs(b)).dataSync()[0]));
  const d = maxDiff(a, b);
  assert.ok(d <= tol * scale, `${what}: max difference ${d} (scale ${scale})`);
}

function seededInput(shape: number[], s: number): tf.Tensor {
  return tf.randomUniform(shape, 0, 1, "float32", s);
}

const WEIGHTED = new Set(["conv", "depthwise", "dense"]);

/** Exports, loads and compares one model in every way the Net offers. */
async function checkGraphAgainstLayers(
  model: tf.LayersModel,
  options: GraphExportOptions & {
    tap: string;
    edit: string;
    editChannels: number;
    /** The model has dilated convs, whose gradients TF.js does not have. */
    dilated?: boolean;
  },
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_" });
  try {
    await exportGraphModel(model, dir, options);
    const { layerNodes } = await graphArtifacts(model, options);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
    assert.equal(json.format, "graph-model");
    assert.ok(Array.isArray(json.modelTopology.node));

    const graph = await loadNet(dir);
    const layers = Net.fromModel(model, options.sidecar ?? {});
    try {
      assert.equal(graph.kind, "graph");
      assert.equal(layers.kind, "layers");
      assert.deepEqual(graph.input, layers.input);
      assert.equal(graph.numClasses, layers.numClasses);
      const before = tf.memory().numTensors;

      // Layer listing: every conv/pool/dense layer has a node with the same facts.
      const gByName = new Map(graph.layers.map((l) => [l.name, l]));
      const base = (name: string) => `${options.prefix ?? ""}${name}/`;
      for (const info of layers.layers) {
        if (info.role === "input") continue;
        const out = gByName.get(layerNodes[info.name]);
        if (!out) continue; // Dropout becomes an Identity, which the graph listing skips.
        assert.deepEqual(out.outputShape, info.outputShape, `${info.name} output shape`);
        const nodes = graph.layers.filter((l) => l.name.startsWith(base(info.name)));
        if (!["conv", "depthwise", "pool", "dense", "global"].includes(info.role)) continue;
        const main = nodes.find((l) => l.role === info.role) as LayerInfo;
        assert.ok(main, `${info.name}: no ${info.role} node among ${nodes.map((n) => n.name)}`);
        for (const k of ["kernel", "stride", "padding", "dilation", "units"] as const) {
          if (k === "units" && info.role === "depthwise") {
            // The LayersModel listing gives no units for depthwise convs; the graph gives
            // its output channels (in channels x depth multiplier).
            assert.equal(main.units, info.outputShape.at(-1), `${info.name} units`);
            continue;
          }
          assert.deepEqual(main[k], info[k], `${info.name} ${k}`);
        }
        if (WEIGHTED.has(info.role)) {
          const params = nodes.reduce((a, l) => a + l.params, 0);
          assert.equal(params, info.params, `${info.name} params`);
          const kg = graph.kernel(main.name);
          const kl = layers.kernel(info.name);
          assertClose(kg, kl, `${info.name} kernel`, 0);
          tf.dispose([kg, kl]);
        }
      }
      // Only weights count as parameters (not shapes or axes).
      const total = (n: Net) => n.layers.reduce((a, l) => a + l.params, 0);
      if (!model.layers.some((l) => l.getClassName() === "BatchNormalization")) {
        assert.equal(total(graph), total(layers));
      }

      // Receptive fields of corresponding layers.
      const rfG = receptiveFields(graph);
      const rfL = receptiveFields(layers);
      for (const info of layers.layers) {
        if (info.role === "input" || !gByName.has(layerNodes[info.name])) continue;
        assert.deepEqual(rfG.get(layerNodes[info.name]), rfL.get(info.name), `${info.name} RF`);
      }

      const { height, width, channels } = layers.input;
      const x = seededInput([3, height, width, channels], 7);
      const tapNode = layerNodes[options.tap];
      const editNode = layerNodes[options.edit];

      // Outputs, logits, taps (the input tap included).
      const rl = layers.forward(x, { logits: true, taps: [options.tap, "input"] });
      const rg = graph.forward(x, { logits: true, taps: [tapNode, "input"] });
      assertClose(rg.output, rl.output, "output");
      assertClose(rg.logits!, rl.logits!, "logits");
      assertClose(rg.taps[tapNode], rl.taps[options.tap], `tap ${tapNode}`);
      assertClose(rg.taps.input, x, "input tap", 0);
      assert.notEqual(rg.taps.input, x, "the input tap is a copy the caller may dispose");
      const predicted = tf.tidy(() => tf.argMax(rl.output, 1).dataSync());
      tf.dispose([rl.output, rl.logits!, ...Object.values(rl.taps)]);
      tf.dispose([rg.output, rg.logits!, ...Object.values(rg.taps)]);
      assert.ok(!x.isDisposed);

      // The same edit on both: keep one channel of a conv's output, zero the rest.
      const keep = tf.tidy(() =>
        tf.oneHot(options.editChannels - 1, options.editChannels).asType("float32")
      );
      const edit = (a: tf.Tensor) => tf.mul(a, keep);
      const el = layers.forward(x, { edits: { [options.edit]: edit }, taps: [options.edit] });
      const eg = graph.forward(x, { edits: { [editNode]: edit }, taps: [editNode] });
      assertClose(eg.output, el.output, `output after editing ${editNode}`);
      assertClose(eg.taps[editNode], el.taps[options.edit], `edited tap ${editNode}`);
      const zeroed = tf.tidy(() =>
        tf.sum(
          tf.abs(eg.taps[editNode].slice([0, 0, 0, 0], [-1, -1, -1, options.editChannels - 1])),
        )
          .dataSync()[0]
      );
      assert.equal(zeroed, 0);
      tf.dispose([el.output, eg.output, ...Object.values(el.taps), ...Object.values(eg.taps)]);

      // An edit on the logits node, which is also tapped (twice) and asked for as logits:
      // each result is the caller's own tensor, none freed by the forward pass.
      const softmax = graph.layers[graph.layers.length - 1];
      assert.equal(softmax.type, "Softmax");
      const logitsNode = softmax.inputs[0];
      const eo = graph.forward(x, {
        edits: { [logitsNode]: (a) => tf.mul(a, 2) },
        taps: [logitsNode, logitsNode, "input"],
        logits: true,
      });
      const plain = graph.forward(x, { logits: true });
      const results = [eo.output, eo.logits!, eo.taps[logitsNode], eo.taps.input];
      assert.equal(new Set(results).size, results.length, "distinct result tensors");
      assert.ok(results.every((t) => !t.isDisposed));
      const twice = tf.mul(plain.logits!, 2);
      const probs = tf.softmax(twice);
      assertClose(eo.logits!, twice, "edited logits");
      assertClose(eo.taps[logitsNode], twice, "edited logits tap");
      assertClose(eo.output, probs, "output after editing the logits");
      tf.dispose([...results, plain.output, plain.logits!, twice, probs]);

      // Gradients with respect to the input, under every ReLU rule.
      for (const rule of RELU_RULES) {
        const cls = predicted[0];
        const objective: Objective = {
          name: "classLogit",
          logits: true,
          perImage: ({ result }) =>
            tf.sum<tf.Tensor1D>(
              tf.mul(result.logits!, tf.oneHot(cls, layers.numClasses).asType("float32")),
              1,
            ),
        };
        if (options.dilated) continue;
        const gl = gradient(layers, x, objective, { rule });
        const gg = gradient(graph, x, objective, { rule });
        assertClose(gg.value, gl.value, `${rule} objective value`);
        assertClose(gg.grad, gl.grad, `${rule} gradient`);
        const norm = tf.tidy(() => tf.sum(tf.abs(gl.grad)).dataSync()[0]);
        assert.ok(norm > 0, `${rule} gradient is not all zero`);
        tf.dispose([gl.grad, gl.value, gg.grad, gg.value]);
      }
      // And with respect to an intermediate node.
      if (!options.dilated) {
        const outputSum = (tap: string): Objective => ({
          name: "outputSum",
          taps: [tap],
          output: true,
          perImage: ({ result }) =>
            tf.sum<tf.Tensor1D>(result.output.reshape([result.output.shape[0], -1]), 1),
        });
        const wl = gradient(layers, x, outputSum(options.tap), {
          wrt: options.tap,
          rule: "guided",
        });
        const wg = gradient(
          graph,
          x,
          outputSum(tapNode),
          {
            wrt: tapNode,
            rule: "guided",
          },
        );
        assertClose(wg.grad, wl.grad, `gradient with respect to ${tapNode}`);
        tf.dispose([wl.grad, wl.value, wg.grad, wg.value]);
      }

      keep.dispose();
      assert.equal(tf.memory().numTensors, before + 1, "no tensor leaks");

      if (options.dilated) {
        // TF.js has no gradient for dilated convs: the graph fails as the LayersModel
        // does, with an error naming the layer, and the half-done tape is freed.
        const why = /Gradients through dilated convolutions are not supported .*layer "c3"/;
        const objective: Objective = {
          name: "logitSum",
          logits: true,
          perImage: ({ result }) => tf.sum<tf.Tensor1D>(result.logits!, 1),
        };
        const count = tf.memory().numTensors;
        assert.throws(() => gradient(layers, x, objective), why);
        assert.throws(() => gradient(graph, x, /* same */ objective), RangeError);
        assert.equal(tf.memory().numTensors, count, "a failing gradient leaks nothing");
      }
      x.dispose();
    } finally {
      graph.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("graph export: Sequential conv net (plain ops) agrees with its LayersModel", async () => {
  const model = sequentialNet();
  await checkGraphAgainstLayers(model, { tap: "c2", edit: "c3", editChannels: 8, dilated: true });
  model.dispose();
  const undilated = sequentialNet(1);
  await checkGraphAgainstLayers(undilated, { tap: "c3", edit: "c2", editChannels: 8 });
  undilated.dispose();
});

Deno.test("graph export: Sequential conv net, fused ops and converter-style names", async () => {
  const model = sequentialNet(1);
  const prefix = "StatefulPartitionedCall/sequential/";
  const { modelJson, layerNodes } = await graphArtifacts(model, { fuse: true, prefix });
  const ops = new Map(modelJson.modelTopology.node.map((n) => [n.name, n.op]));
  assert.equal(layerNodes.c1, `${prefix}c1/Relu`);
  assert.equal(ops.get(`${prefix}c1/Relu`), "_FusedConv2D");
  assert.equal(ops.get(`${prefix}fc/Relu`), "_FusedMatMul");
  assert.equal(ops.get(`${prefix}out/Softmax`), "Softmax");
  assert.equal(ops.get("Identity"), "Identity");
  await checkGraphAgainstLayers(model, {
    fuse: true,
    prefix,
    tap: "c2",
    edit: "c1",
    editChannels: 6,
  });
  model.dispose();
});

Deno.test("graph export: functional net with Add, Concatenate, BatchNorm, Dropout", async () => {
  const model = functionalNet();
  const sidecar: Sidecar = { name: "functional", logits: "logits", probs: "probs" };
  const { modelJson } = await graphArtifacts(model);
  const ops = new Set(modelJson.modelTopology.node.map((n) => n.op));
  for (const op of ["AddV2", "ConcatV2", "FusedBatchNormV3", "Mean", "Identity", "Relu"]) {
    assert.ok(ops.has(op), `${op} in the graph`);
  }
  await checkGraphAgainstLayers(model, {
    sidecar,
    tap: "res_relu",
    edit: "right",
    editChannels: 4,
  });
  model.dispose();
});

Deno.test("graph export: depthwise convs (plain and fused) and a batch norm after dense", async () => {
  const model = depthwiseNet();
  const plain = (await graphArtifacts(model)).modelJson.modelTopology.node.map((n) => n.op);
  assert.ok(plain.includes("DepthwiseConv2dNative") && plain.includes("Mul"));
  const fused = (await graphArtifacts(model, { fuse: true })).modelJson.modelTopology.node.map((
    n,
  ) => n.op);
  assert.ok(fused.includes("FusedDepthwiseConv2dNative"));
  await checkGraphAgainstLayers(model, { tap: "dw2", edit: "dw1", editChannels: 6 });
  await checkGraphAgainstLayers(model, { fuse: true, tap: "dw1", edit: "pw", editChannels: 5 });
  model.dispose();
});

Deno.test("graph with a free-size input takes its size from convlens.json", async () => {
  const model = sequentialNet(1);
  const { modelJson, weightData } = await graphArtifacts(model);
  const free = { dim: [-1, -1, -1, 3].map((d) => ({ size: String(d) })) };
  const placeholder = modelJson.modelTopology.node.find((n) => n.op === "Placeholder")!;
  placeholder.attr = { ...placeholder.attr, shape: { shape: free } };
  for (const v of Object.values(modelJson.signature.inputs)) v.tensorShape = free;
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_free_" });
  try {
    await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(modelJson));
    await Deno.writeFile(`${dir}/weights.bin`, weightData);
    await assert.rejects(loadNet(dir), /input height is unknown.*convlens\.json/);
    await Deno.writeTextFile(
      `${dir}/convlens.json`,
      JSON.stringify({ input: { height: 16, width: 16, channels: 3 } }),
    );
    const graph = await loadNet(dir);
    const layers = Net.fromModel(model);
    assert.deepEqual(graph.layers[0].outputShape, [16, 16, 3]);
    assert.deepEqual(graph.layer("out/Softmax").outputShape, [5]);
    assert.deepEqual(graph.layer("c3/Relu").outputShape, layers.layer("c3").outputShape);
    assert.deepEqual(
      receptiveFields(graph).get("c3/Relu"),
      receptiveFields(layers).get("c3"),
    );
    const x = seededInput([2, 16, 16, 3], 11);
    const a = graph.forward(x).output;
    const b = layers.forward(x).output;
    assertClose(a, b, "free-size graph output");
    tf.dispose([x, a, b]);
    graph.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("graph export: unsupported layers are refused by name, with no files written", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ name: "c", inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }),
      tf.layers.upSampling2d({ name: "up" }),
    ],
  });
  const dilated = tf.sequential({
    layers: [
      tf.layers.depthwiseConv2d({
        name: "dw",
        inputShape: [6, 6, 1],
        kernelSize: 3,
        dilationRate: 2,
      }),
    ],
  });
  await assert.rejects(
    () => graphArtifacts(dilated),
    /Layer "dw" \(DepthwiseConv2D\).*ignores dilationRate/,
  );
  dilated.dispose();
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_" });
  try {
    await assert.rejects(
      exportGraphModel(model, `${dir}/out`),
      /Layer "up" \(UpSampling2D\) cannot be exported.*supported layers are/,
    );
    await assert.rejects(Deno.stat(`${dir}/out`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("graph export CLI: folder to folder, convlens.json logits renamed to the node", async () => {
  const { saveLayersModel } = await import("../core/load.ts");
  const model = functionalNet();
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_cli_" });
  try {
    await saveLayersModel(model, `${dir}/layers`);
    const sidecar = { name: "f", labels: ["a", "b", "c", "d"], logits: "logits", probs: "probs" };
    await Deno.writeTextFile(`${dir}/layers/convlens.json`, JSON.stringify(sidecar));
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/graph_export.ts", `${dir}/layers`, `${dir}/graph`],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    });
    const res = await cmd.output();
    const text = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, text);
    const written = JSON.parse(await Deno.readTextFile(`${dir}/graph/convlens.json`));
    assert.equal(written.logits, "logits/BiasAdd");
    assert.equal(written.probs, "probs/Softmax");
    assert.deepEqual(written.labels, sidecar.labels);
    const net = await loadNet(`${dir}/graph`);
    assert.equal(net.kind, "graph");
    assert.deepEqual(net.labels, sidecar.labels);
    assert.equal(net.sidecar.logits, "logits/BiasAdd");
    const x = seededInput([2, 12, 12, 2], 3);
    const a = net.logits(x);
    const b = Net.fromModel(model, sidecar).logits(x);
    assertClose(a, b, "CLI-exported logits");
    tf.dispose([a, b, x]);
    net.dispose();

    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/graph_export.ts", `${dir}/nowhere`, `${dir}/g2`],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 1);
    assert.match(new TextDecoder().decode(bad.stderr), /Model not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("graph export: the built-in MNIST model gives the same predictions as a GraphModel", async () => {
  const folder = new URL("../models/mnist", import.meta.url).pathname;
  try {
    await Deno.stat(`${folder}/model.json`);
  } catch {
    console.log(`skipped: ${folder}/model.json does not exist yet (train it with deno task train)`);
    return;
  }
  const layers = await loadNet(folder);
  const sidecar = JSON.parse(await Deno.readTextFile(`${folder}/convlens.json`)) as Sidecar;
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_mnist_" });
  try {
    await exportGraphModel(layers.model as tf.LayersModel, dir, { sidecar, fuse: true });
    const graph = await loadNet(dir);
    assert.equal(graph.kind, "graph");
    const before = tf.memory().numTensors;
    const { images, labels } = await heldOutDigits({ count: 50 });
    const x = layers.fromPixels(images);
    const pl = layers.predictInBatches(x as tf.Tensor4D, 25);
    const pg = graph.predictInBatches(x as tf.Tensor4D, 25);
    assertClose(pg, pl, "MNIST probabilities");
    if (sidecar.logits) assert.equal(graph.sidecar.logits, `${sidecar.logits}/BiasAdd`);
    const ll = layers.logits(x);
    const lg = graph.logits(x);
    assertClose(lg, ll, "MNIST logits");
    tf.dispose([ll, lg]);
    const al = Array.from(tf.tidy(() => tf.argMax(pl, 1).dataSync()));
    const ag = Array.from(tf.tidy(() => tf.argMax(pg, 1).dataSync()));
    assert.deepEqual(ag, al);
    const correct = al.filter((p, i) => p === labels[i]).length;
    assert.ok(correct >= 40, `the model gets ${correct}/50 held-out digits right`);
    tf.dispose([images, x, pl, pg]);
    assert.equal(tf.memory().numTensors, before);
    graph.dispose();
  } finally {
    layers.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GraphModel forward with stopAtTaps gives the same taps and runs fewer nodes", async () => {
  const model = functionalNet();
  const sidecar: Sidecar = { name: "functional", logits: "logits", probs: "probs" };
  const dir = await Deno.makeTempDir({ prefix: "convlens_graph_stop_" });
  try {
    await exportGraphModel(model, dir, { sidecar });
    const graph = await loadNet(dir);
    const layers = Net.fromModel(model, sidecar);
    const { layerNodes } = await graphArtifacts(model, { sidecar });
    const x = seededInput([2, graph.input.height, graph.input.width, graph.input.channels], 9);
    const before = tf.memory().numTensors;
    for (const tap of ["res_relu", "input"]) {
      const node = tap === "input" ? "input" : layerNodes[tap];
      const full = graph.forward(x, { taps: [node] });
      const short = graph.forward(x, { taps: [node], stopAtTaps: true });
      assertClose(short.taps[node], full.taps[node], `graph tap ${tap}`, 0);
      assert.throws(() => short.output, /stopAtTaps/);
      const logits = graph.forward(x, { taps: [node], logits: true, stopAtTaps: true });
      const want = layers.logits(x);
      assertClose(logits.logits!, want, "graph logits with stopAtTaps");
      const count = async (stop: boolean) =>
        (await tf.profile(() => {
          const r = graph.forward(x, { taps: [node], stopAtTaps: stop });
          tf.dispose(Object.values(r.taps));
          if (!stop) r.output.dispose();
        })).kernelNames.length;
      assert.ok((await count(true)) < (await count(false)));
      tf.dispose([full.output, ...Object.values(full.taps), ...Object.values(short.taps)]);
      tf.dispose([logits.logits!, ...Object.values(logits.taps), want]);
    }
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    graph.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("a nested model exports inlined: the graph computes the same and names its layers by path", async () => {
  const model = nestedTransfer();
  const dir = await Deno.makeTempDir();
  try {
    const { layerNodes } = await graphArtifacts(model);
    assert.ok(layerNodes["base/conv1"]?.startsWith("base/conv1/"), JSON.stringify(layerNodes));
    assert.ok(layerNodes.base, "the nested model's own entry names its output node");
    await exportGraphModel(model, dir);
    const graph = await loadNet(dir);
    const x = tf.randomUniform(
      [2, ...model.inputs[0].shape.slice(1) as number[]],
      0,
      1,
      "float32",
      3,
    );
    const want = model.predict(x) as tf.Tensor;
    const got = graph.forward(x as tf.Tensor4D).output;
    const diff = tf.tidy(() => tf.sub(want, got).abs().max().dataSync()[0]);
    assert.ok(diff < 1e-5, `graph and LayersModel differ by ${diff}`);
    tf.dispose([x, want, got]);
    graph.dispose();
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
