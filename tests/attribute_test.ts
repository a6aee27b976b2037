/**
 * Attribution methods against values computed by hand on a tiny net, the
 * contract's batching and cleanup, SmoothGrad's batch-size invariance, bad input
 * and WASM/CPU agreement.
 *
 * The tiny net: input 3x3x1, conv 2x2 with two filters K0 = [[1,0],[0,1]] and
 * K1 = [[0,1],[-1,0]] (ReLU, no bias), 2x2 max pool, flatten, a hidden dense ReLU
 * layer V = [[1,-1],[-1,1]], logits U = [[1,-1],[2,1]], softmax. For
 * x = [[1,2,0],[0,1,3],[2,0,1]]: conv0 = [[2,5],[0,2]] (switch (0,1)), conv1 =
 * [[2,-1],[-1,3]] (switch (1,1)), pooled p = [5, 3], hidden pre-activations
 * [2, -2] so h = [2, 0], logits s = [2, -2].
 *
 * d s0 / d x by hand (dy at the logits = [1, 0], so dy at h = [1, 2]):
 * - plain: the ReLU of h1 (pre-activation -2) blocks its 2: dpre = [1, 0], dp =
 *   [1, -1]; both conv switches are positive, so K0 at (0,1) minus K1 at (1,1):
 *   [[0,1,0],[0,0,0],[0,1,0]].
 * - guided: as plain at the hidden layer; at the conv ReLU the -1 of filter 1 is
 *   dropped: K0 at (0,1) = [[0,1,0],[0,0,1],[0,0,0]].
 * - deconv: relu(dy) only, so h1's 2 passes: dpre = [1, 2], dp = [1-2, -1+2] =
 *   [-1, 1]; the conv ReLU drops the -1: K1 at (1,1) = [[0,0,0],[0,0,1],[0,-1,0]].
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import type { AnyPlugin, InputImages } from "../core/plugin.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { seededRandom } from "../core/random.ts";
import { runPlugin } from "./_run.ts";
import {
  attributionMap,
  attributionPlugins,
  curveArea,
  deconvnet,
  deconvnetAttribution,
  deletionRanks,
  gradCam,
  gradCamAttribution,
  gradCamMap,
  guidedBackprop,
  guidedBackpropAttribution,
  guidedGradCam,
  integratedGradients,
  integrateGradients,
  pointHits,
  predictedClasses,
  ranks,
  resolveClasses,
  saliency,
  saliencyAttribution,
  smoothGrad,
  smoothgrad,
  spearman,
} from "../plugins/attribute/mod.ts";
import { functionalNet, sequentialNet } from "./_nets.ts";

await initBackend("cpu", { quiet: true });

const PLAIN = [0, 1, 0, 0, 0, 0, 0, 1, 0];
const GUIDED = [0, 1, 0, 0, 0, 1, 0, 0, 0];
const DECONV = [0, 0, 0, 0, 0, 1, 0, -1, 0];
const X = [1, 2, 0, 0, 1, 3, 2, 0, 1];

function tinyLayers(): tf.layers.Layer[] {
  return [
    tf.layers.conv2d({
      inputShape: [3, 3, 1],
      filters: 2,
      kernelSize: 2,
      useBias: false,
      activation: "relu",
      name: "conv",
      weights: [tf.tensor4d([1, 0, 0, 1, 0, -1, 1, 0], [2, 2, 1, 2])],
    }),
    tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }),
    tf.layers.flatten({ name: "flat" }),
    tf.layers.dense({
      units: 2,
      useBias: false,
      activation: "relu",
      name: "hidden",
      weights: [tf.tensor2d([[1, -1], [-1, 1]])],
    }),
    tf.layers.dense({
      units: 2,
      useBias: false,
      name: "logits",
      weights: [tf.tensor2d([[1, -1], [2, 1]])],
    }),
    tf.layers.activation({ activation: "softmax", name: "probs" }),
  ];
}

function tinyNet(): Net {
  return Net.fromModel(tf.sequential({ layers: tinyLayers() }));
}

/**
 * The tiny net as a functional model with a second branch (a zero 1x1 conv of the
 * input, cropped to the conv's grid) added to the conv output: the same function,
 * with the grid of interest at the merge layer "add".
 */
function tinyFunctional(): Net {
  const input = tf.input({ shape: [3, 3, 1], name: "image" });
  const [conv, pool, flat, hidden, logits, probs] = tinyLayers().map((l, i) =>
    i === 0
      ? tf.layers.conv2d({
        filters: 2,
        kernelSize: 2,
        useBias: false,
        activation: "relu",
        name: "conv",
        weights: [tf.tensor4d([1, 0, 0, 1, 0, -1, 1, 0], [2, 2, 1, 2])],
      })
      : l
  );
  const a = conv.apply(input) as tf.SymbolicTensor;
  const side = tf.layers.conv2d({
    filters: 2,
    kernelSize: 2,
    useBias: false,
    name: "side",
    weights: [tf.zeros([2, 2, 1, 2])],
  }).apply(input) as tf.SymbolicTensor;
  const add = tf.layers.add({ name: "add" }).apply([a, side]) as tf.SymbolicTensor;
  let t = add;
  for (const l of [pool, flat, hidden, logits, probs]) t = l.apply(t) as tf.SymbolicTensor;
  return Net.fromModel(tf.model({ inputs: input, outputs: t }));
}

function tinyImages(net: Net, n = 1): InputImages {
  const px = tf.tidy(() => tf.tile(tf.tensor4d(X, [1, 3, 3, 1]), [n, 1, 1, 1]) as tf.Tensor4D);
  return imagesFromPixels(net, px);
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]} (all: ${Array.from(got)})`,
    );
  }
}

async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Runs fn and checks it leaves tf.memory().numTensors as it was. */
async function noLeak<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const r = await fn();
  assert.equal(tf.memory().numTensors, before, `${what}: leaked tensors`);
  return r;
}

const net = tinyNet();
const images = tinyImages(net);

Deno.test("tiny net: forward values match the hand computation", () => {
  const s = net.logits(images.x);
  close(s.dataSync(), [2, -2], "logits");
  s.dispose();
});

Deno.test("saliency() is the plain data gradient d s_y / d x, computed by hand", async () => {
  await noLeak("saliency", async () => {
    const g = await saliencyAttribution.attribute(net, images.x, [0]);
    close(await values(g), PLAIN, "d s0/dx");
    // d s1 / d x = -d s0 / d x here (the two logits share every path with opposite signs).
    const g1 = await saliencyAttribution.attribute(net, images.x, [1]);
    close(await values(g1), PLAIN.map((v) => -v), "d s1/dx");
    tf.dispose([g, g1]);
  });
});

Deno.test("saliency() on prob and logprob follows the softmax's chain rule", async () => {
  // p1 = 1 / (1 + e^4); d p0 = 2 p0 p1 d s0; d log p0 = 2 p1 d s0.
  const p1 = 1 / (1 + Math.exp(4)), p0 = 1 - p1;
  const prob = await saliencyAttribution.attribute(net, images.x, [0], { target: "prob" });
  const logp = await saliencyAttribution.attribute(net, images.x, [0], { target: "logprob" });
  close(await values(prob), PLAIN.map((v) => 2 * p0 * p1 * v), "d p0/dx");
  close(await values(logp), PLAIN.map((v) => 2 * p1 * v), "d log p0/dx");
  tf.dispose([prob, logp]);
});

Deno.test("guided backprop and deconvnet of a class score match the hand computation", async () => {
  await noLeak("rules", async () => {
    const g = await guidedBackpropAttribution.attribute(net, images.x, [0]);
    const d = await deconvnetAttribution.attribute(net, images.x, [0]);
    close(await values(g), GUIDED, "guided");
    close(await values(d), DECONV, "deconv");
    tf.dispose([g, d]);
  });
});

Deno.test("unit projections: strongest neuron, one neuron, a whole channel", async () => {
  // Strongest of conv channel 1 is (1,1) = 3: the DeconvNet feeds 3 there, so 3 * K1 at (1,1).
  const r = await runPlugin(net, images, deconvnet, { layer: "conv", channel: 1 });
  close(await values(r.tensors.attribution), [0, 0, 0, 0, 0, 3, 0, -3, 0], "strongest ch1");
  assert.equal(r.figures.units, "ch 1 (1,1)");
  r.dispose();
  // Neuron (0,0) of channel 0 (value 2): 2 * K0 at (0,0).
  const n = await runPlugin(net, images, guidedBackprop, {
    layer: "conv",
    mode: "neuron",
    channel: 0,
    row: 0,
    col: 0,
  });
  close(await values(n.tensors.attribution), [2, 0, 0, 0, 2, 0, 0, 0, 0], "neuron (0,0,0)");
  n.dispose();
  // Whole channel 0 = [[2,5],[0,2]], each value times K0 at its place.
  const c = await runPlugin(net, images, deconvnet, { layer: "conv", channel: 0, mode: "channel" });
  close(await values(c.tensors.attribution), [2, 5, 0, 0, 4, 5, 0, 0, 2], "channel 0");
  c.dispose();
  // The most active channel (-1): channel 0 (max 5 > 3).
  const m = await runPlugin(net, images, deconvnet, { layer: "conv" });
  assert.equal(m.figures.units, "ch 0 (0,1)");
  close(await values(m.tensors.attribution), [0, 5, 0, 0, 0, 5, 0, 0, 0], "strongest overall");
  m.dispose();
  // A dense unit: hidden unit 1 has activation 0, so nothing is fed back.
  const h = await runPlugin(net, images, deconvnet, { layer: "hidden", channel: 1 });
  close(await values(h.tensors.attribution), Array(9).fill(0), "hidden unit 1");
  h.dispose();
});

Deno.test("deconvnet: a channel or neuron out of range is refused clearly", async () => {
  await assert.rejects(
    runPlugin(net, images, deconvnet, { layer: "conv", channel: 2 }),
    /channel 2 is out of range: layer "conv" has 2 channels/,
  );
  await assert.rejects(
    runPlugin(net, images, deconvnet, { layer: "conv", mode: "neuron", row: 2 }),
    /neuron \(2, 0\) is outside layer "conv"'s 2x2 grid/,
  );
});

Deno.test("grad-cam: relu(sum_k mean(dS/dA_k) A_k) upsampled, by hand", async () => {
  // dS0/dA: +1 at conv0 (0,1), -1 at conv1 (1,1): alpha = [1/4, -1/4];
  // A0 = [[2,5],[0,2]], A1 = [[2,0],[0,3]] -> relu([[0,5],[0,-1]] / 4) = [[0,1.25],[0,0]].
  const cam = gradCamMap(net, images.x, [0], { layer: "conv" });
  close(await values(cam), [0, 1.25, 0, 0], "cam");
  cam.dispose();
  const r = await runPlugin(net, images, gradCam, { layer: "conv", class: [0] });
  // Bilinear 2x2 -> 3x3 with half-pixel centres samples rows/cols at 0, 0.5, 1.
  close(
    await values(r.tensors.attribution),
    [0, 0.625, 1.25, 0, 0.3125, 0.625, 0, 0, 0],
    "upsampled",
  );
  assert.deepEqual(r.tensors.cam.shape, [1, 2, 2]);
  r.dispose();
});

Deno.test("grad-cam works on a functional model (the layer is a merge)", async () => {
  const f = tinyFunctional();
  const imgs = tinyImages(f);
  const cam = gradCamMap(f, imgs.x, [0], { layer: "add" });
  close(await values(cam), [0, 1.25, 0, 0], "cam at add");
  cam.dispose();
  const big = Net.fromModel(functionalNet(2));
  const px = tf.randomUniform([2, 10, 10, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const bi = imagesFromPixels(big, px);
  const r = await noLeak("functional grad-cam", async () => {
    const res = await runPlugin(big, bi, gradCam, { class: [0, 2] });
    assert.equal(res.figures.layer, "drop"); // the last layer with a grid
    assert.deepEqual(res.tensors.attribution.shape, [2, 10, 10, 3]);
    // drop -> global average pool -> dense: dS_c/dA_k(i,j) = W[k,c] / 25 everywhere, so
    // alpha_k = W[k,c] / 25 and the map is relu(sum_k W[k,c] A_k / 25), from the weights alone.
    const want = tf.tidy(() => {
      const { taps, output } = big.forward(bi.x, { taps: ["drop"] });
      output.dispose();
      const w = (big.model as tf.LayersModel).getLayer("out").getWeights()[0] as tf.Tensor2D;
      const a = taps.drop as tf.Tensor4D;
      return tf.stack(
        [0, 2].map((c, i) =>
          tf.relu(
            a.slice([i, 0, 0, 0], [1, -1, -1, -1]).mul(
              w.slice([0, c], [-1, 1]).reshape([1, 1, 1, -1]),
            ).sum(3).div(25),
          )
            .squeeze([0])
        ),
      );
    });
    close(await values(res.tensors.cam), await values(want), "cam from the weights", 1e-4);
    want.dispose();
    res.dispose();
    return true;
  });
  assert.ok(r);
  tf.dispose([imgs.x, imgs.pixels, bi.x, bi.pixels]);
  f.dispose();
  big.dispose();
});

Deno.test("grad-cam: a layer with no spatial extent gets a clear error", async () => {
  await assert.rejects(
    runPlugin(net, images, gradCam, { layer: "hidden" }),
    (e: Error) =>
      e instanceof RangeError && /layer "hidden" has output \[2\] with no spatial extent/.test(
        e.message,
      ) && /conv, pool/.test(e.message),
  );
});

Deno.test("a class index out of range is refused with the valid range", async () => {
  const plugins: AnyPlugin[] = [saliency, guidedBackprop, gradCam, integratedGradients, smoothgrad];
  for (const plugin of plugins) {
    await assert.rejects(
      runPlugin(net, images, plugin, { class: [2] }, attributionPlugins),
      (e: Error) =>
        e instanceof RangeError && /Class index 2 is out of range: this model has 2 classes/.test(
          e.message,
        ),
      plugin.name,
    );
  }
  const two = tinyImages(net, 2);
  await assert.rejects(
    resolveClasses(net, two.x, [0, 1, 0]),
    /3 classes given for 2 images/,
  );
  assert.deepEqual(await resolveClasses(net, two.x, [1, -1]), [1, 0]);
  tf.dispose([two.x, two.pixels]);
});

Deno.test("guided-grad-cam is guided backprop times the upsampled Grad-CAM map", async () => {
  const r = await runPlugin(net, images, guidedGradCam, { layer: "conv" }, attributionPlugins);
  const cam = [0, 0.625, 1.25, 0, 0.3125, 0.625, 0, 0, 0];
  close(await values(r.tensors.attribution), GUIDED.map((g, i) => g * cam[i]), "product");
  r.dispose();
});

Deno.test("integrated gradients of a linear model are (x - x') * w for any rule", async () => {
  const lin = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [2, 2, 1], name: "flat" }),
      tf.layers.dense({
        units: 2,
        name: "logits",
        weights: [tf.tensor2d([[1, -2], [3, 0.5], [-1, 1], [0, 2]]), tf.tensor1d([0.3, -0.1])],
      }),
    ],
  });
  const ln = Net.fromModel(lin);
  const x = tf.tensor4d([0.5, 1, 0.25, 2], [1, 2, 2, 1]);
  for (const rule of ["trapezoid", "midpoint"] as const) {
    const ig = await integrateGradients(ln, x, [1], { steps: 3, rule });
    close(await values(ig.attribution), [0.5 * -2, 1 * 0.5, 0.25 * 1, 2 * 2], rule);
    assert.ok(ig.completenessError[0] < 1e-5);
    tf.dispose([ig.attribution, ig.baseline]);
  }
  x.dispose();
  ln.dispose();
});

Deno.test("integrated gradients: completeness within 1% on the tiny net, batched alike", async () => {
  const two = tinyImages(net, 2);
  const a = await integrateGradients(net, two.x, [0, 1], { steps: 256, batchSize: 100 });
  const b = await integrateGradients(net, two.x, [0, 1], { steps: 256, batchSize: 7 });
  assert.ok(Math.max(...a.completenessError) < 0.01, `${a.completenessError}`);
  close(await values(a.attribution), await values(b.attribution), "batching", 1e-4);
  tf.dispose([a.attribution, a.baseline, b.attribution, b.baseline, two.x, two.pixels]);
  const r = await noLeak("ig plugin", async () => {
    const res = await runPlugin(net, images, integratedGradients, {
      steps: 256,
      baseline: "black",
    });
    const err = res.figures.meanCompletenessError as number;
    res.dispose();
    return err;
  });
  assert.ok(r < 0.01, `completeness error ${r}`);
});

const seq = Net.fromModel(sequentialNet(1));
const seqImages = imagesFromPixels(
  seq,
  tf.randomUniform([3, 12, 12, 1], 0, 1, "float32", 11) as tf.Tensor4D,
  [0, 1, 2],
);

Deno.test("smoothgrad with sigma 0 is the method itself", async () => {
  const target = await predictedClasses(seq, seqImages.x);
  const plain = await saliencyAttribution.attribute(seq, seqImages.x, target);
  const smooth = await smoothGrad(saliencyAttribution).attribute(seq, seqImages.x, target, {
    samples: 4,
    sigma: 0,
  });
  close(await values(smooth), await values(plain), "sigma 0");
  tf.dispose([plain, smooth]);
});

Deno.test("smoothgrad of grad-cam with sigma 0 is grad-cam itself", async () => {
  const target = [0, 1, 2];
  const plain = await gradCamAttribution.attribute(seq, seqImages.x, target);
  const smooth = await smoothGrad(gradCamAttribution).attribute(seq, seqImages.x, target, {
    samples: 3,
    sigma: 0,
  });
  close(await values(smooth), await values(plain), "sigma 0", 1e-5);
  assert.ok((await values(plain)).some((v) => v > 0), "a Grad-CAM map that is not all zeros");
  tf.dispose([plain, smooth]);
});

Deno.test("smoothgrad gives the same output for batch sizes 1, 7 and 64", async () => {
  const outs: number[][] = [];
  for (const batchSize of [1, 7, 64]) {
    const r = await noLeak(`smoothgrad batch ${batchSize}`, async () => {
      const res = await runPlugin(
        seq,
        seqImages,
        smoothgrad,
        { samples: 10, batchSize },
        attributionPlugins,
        5,
      );
      const v = await values(res.tensors.attribution);
      res.dispose();
      return v;
    });
    outs.push(r);
  }
  assert.deepEqual(outs[1], outs[0]);
  assert.deepEqual(outs[2], outs[0]);
  // And the squared variant through the function form, over another method.
  const target = [0, 1, 2];
  const sq = smoothGrad(guidedBackpropAttribution);
  const a = await sq.attribute(seq, seqImages.x, target, {
    samples: 9,
    batchSize: 2,
    magnitude: true,
    seed: 3,
  });
  const b = await sq.attribute(seq, seqImages.x, target, {
    samples: 9,
    batchSize: 27,
    magnitude: true,
    seed: 3,
  });
  assert.deepEqual(await values(a), await values(b));
  assert.ok((await values(a)).every((v) => v >= 0));
  tf.dispose([a, b]);
});

Deno.test("smoothgrad wraps any registered attribution plugin, with its parameters", async () => {
  const r = await runPlugin(
    seq,
    seqImages,
    smoothgrad,
    { method: "grad-cam", params: '{"layer":"conv1"}', samples: 3 },
    attributionPlugins,
  );
  assert.deepEqual(r.tensors.attribution.shape, [3, 12, 12, 1]);
  assert.equal(r.figures.smoothed, "grad-cam");
  r.dispose();
  await assert.rejects(
    runPlugin(seq, seqImages, smoothgrad, { method: "nope" }, attributionPlugins),
    /Unknown plugin "nope"/,
  );
  await assert.rejects(
    runPlugin(seq, seqImages, smoothgrad, { params: "[1" }, attributionPlugins),
    /--params of smoothgrad must be a JSON object/,
  );
});

Deno.test("every attribution plugin: documented shapes, deterministic, no leaks", async () => {
  for (const plugin of attributionPlugins) {
    const params = plugin.name === "smoothgrad"
      ? { samples: 4 }
      : plugin.name === "integrated-gradients"
      ? { steps: 8 }
      : {};
    const before = tf.memory().numTensors;
    const a = await runPlugin(seq, seqImages, plugin, params, attributionPlugins, 1);
    const b = await runPlugin(seq, seqImages, plugin, params, attributionPlugins, 1);
    const resolved = Object.fromEntries(
      Object.entries(plugin.params).map((
        [k, s],
      ) => [k, (params as Record<string, unknown>)[k] ?? (s as { default?: unknown }).default]),
    );
    const want = plugin.resultShape!(seq, resolved, seqImages);
    const got = Object.fromEntries(Object.entries(a.tensors).map(([k, t]) => [k, t.shape]));
    assert.deepEqual(got, want, plugin.name);
    assert.deepEqual(await values(a.tensors.attribution), await values(b.tensors.attribution));
    assert.equal(a.images.length, 1, `${plugin.name} draws its figure`);
    a.dispose();
    b.dispose();
    assert.equal(tf.memory().numTensors, before, `${plugin.name} leaked tensors`);
  }
});

Deno.test("attributionMap reduces channels by max |.|, sum |.| or sum", async () => {
  const a = tf.tensor4d([1, -3, 2, 0.5, -0.5, -1], [1, 1, 2, 3]);
  close(await values(attributionMap(a)), [3, 1], "max-abs");
  close(await values(attributionMap(a, "sum-abs")), [6, 2], "sum-abs");
  close(await values(attributionMap(a, "sum")), [0, -1], "sum");
  a.dispose();
});

Deno.test("spearman and ranks: ties get mean ranks; monotone maps correlate perfectly", () => {
  assert.deepEqual(Array.from(ranks([3, 1, 3, 2])), [2.5, 0, 2.5, 1]);
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 400]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.equal(spearman([1, 1, 1], [1, 2, 3]), 0);
  // Hand computed: ranks [0,1,2,3] vs [1,0,3,2]: d = 1,1,1,1 -> 1 - 6*4/(4*15) = 0.6.
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [2, 1, 4, 3]) - 0.6) < 1e-12);
});

Deno.test("deletion helpers: ranks follow the map, ties at random; trapezoid AUC", () => {
  const rng = seededRandom(1);
  const r = deletionRanks(new Float32Array([0.1, 0.9, 0.5, 0.9]), 1, 4, rng);
  assert.deepEqual([r[2], r[0]], [2, 3]);
  assert.deepEqual(new Set([r[1], r[3]]), new Set([0, 1]));
  const random = deletionRanks(undefined, 2, 5, rng);
  assert.deepEqual([...random.slice(0, 5)].sort(), [0, 1, 2, 3, 4]);
  assert.equal(curveArea([1, 0.5, 0]), 0.5);
  assert.equal(curveArea([1, 1]), 1);
  assert.deepEqual(
    pointHits([[5, 5], [0, 0], [9, 3]], [{ y0: 2, x0: 2, y1: 6, x1: 6 }, {
      y0: 1,
      x0: 1,
      y1: 3,
      x1: 3,
    }, { y0: 2, x0: 2, y1: 9, x1: 9 }], 0),
    [true, false, false],
  );
  assert.deepEqual(pointHits([[0, 0]], [{ y0: 1, x0: 1, y1: 3, x1: 3 }], 1), [true]);
});

Deno.test("saliency agrees on WASM and CPU", async () => {
  const target = [0, 1, 2];
  const cpu = await saliencyAttribution.attribute(seq, seqImages.x, target);
  const want = await values(cpu);
  cpu.dispose();
  await initBackend("wasm", { quiet: true });
  try {
    const w = Net.fromModel(sequentialNet(1));
    const x = tf.tensor4d(await values(seqImages.x), seqImages.x.shape);
    const g = await saliencyAttribution.attribute(w, x, target);
    const got = await values(g);
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * scale, `wasm vs cpu at ${i}`);
    }
    tf.dispose([g, x]);
    w.dispose();
  } finally {
    await initBackend("cpu", { quiet: true });
  }
});

Deno.test("integrated gradients on a nonlinear net with a uniform baseline match a fine Riemann sum computed naively", async () => {
  // tanh hidden layer: the gradient changes along the path, so a path that stops
  // short, or (x) in place of (x - x'), gives a different answer.
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [2, 2, 1], name: "flat" }),
      tf.layers.dense({
        units: 3,
        activation: "tanh",
        name: "hidden",
        weights: [
          tf.tensor2d([[2, -1, 0.5], [-1.5, 2, 1], [1, 1, -2], [0.5, -2, 1.5]]),
          tf.tensor1d([0.1, -0.2, 0.3]),
        ],
      }),
      tf.layers.dense({
        units: 2,
        name: "logits",
        weights: [tf.tensor2d([[1.5, -1], [-2, 1], [1, 2]]), tf.tensor1d([0, 0])],
      }),
    ],
  });
  const nl = Net.fromModel(model);
  const x = tf.tensor4d([0.9, 0.1, 0.7, 0.3], [1, 2, 2, 1]);
  const ig = await integrateGradients(nl, x, [1], { steps: 64, baseline: "uniform", seed: 4 });
  const base = await values(ig.baseline);
  assert.ok(base.some((v) => v > 0.05), "the uniform baseline is not all zeros");
  // The naive reference: 4,000 midpoint samples of d logit1 / d x along the path.
  const m = 4000;
  const want = tf.tidy(() => {
    const alphas = tf.linspace(0.5 / m, 1 - 0.5 / m, m).reshape([m, 1, 1, 1]);
    const b = ig.baseline;
    const path = b.add(x.sub(b).mul(alphas));
    const g = tf.grad((p: tf.Tensor) => (model.apply(p) as tf.Tensor).slice([0, 1], [-1, 1]).sum())(
      path,
    );
    return g.mean(0, true).mul(x.sub(b));
  });
  const got = await values(ig.attribution);
  const ref = await values(want);
  const scale = Math.max(...ref.map(Math.abs));
  for (let i = 0; i < 4; i++) {
    assert.ok(
      Math.abs(got[i] - ref[i]) < 2e-3 * scale,
      `pixel ${i}: ${got[i]} vs the naive sum ${ref[i]} (all ${got} vs ${ref})`,
    );
  }
  assert.ok(ig.completenessError[0] < 1e-3, `completeness ${ig.completenessError[0]}`);
  tf.dispose([want, ig.attribution, ig.baseline, x]);
  nl.dispose();
});

Deno.test("saliency of a unit of any layer: one conv neuron's gradient is its filter, by hand", async () => {
  // conv0 at (0,1) is 5 > 0, so d conv0(0,1) / dx is K0 = [[1,0],[0,1]] placed at rows 0-1,
  // cols 1-2; the projection carries the unit's activation (as the DeconvNet's does): x 5.
  const r = await noLeak("unit saliency", async () => {
    const res = await runPlugin(net, images, saliency, {
      layer: "conv",
      mode: "neuron",
      channel: 0,
      row: 0,
      col: 1,
    });
    const v = await values(res.tensors.attribution);
    assert.equal(res.figures.layer, "conv");
    res.dispose();
    return v;
  });
  close(r, [0, 5, 0, 0, 0, 5, 0, 0, 0], "unit saliency");
});
