import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { seededRandom } from "../core/random.ts";
import {
  alphaNorm,
  channel,
  classScore,
  custom,
  evaluate,
  featureMatch,
  l2,
  layerEnergy,
  logProbability,
  neuron,
  probability,
  sum,
  totalVariation,
  weighted,
} from "../plugins/optimize/objectives.ts";
import type { Objective } from "../core/objective.ts";
import {
  compose,
  jitter,
  resample,
  roll,
  rotate,
  rotateBy,
  scale,
  scaleBy,
} from "../plugins/optimize/transforms.ts";
import { fourier, lowres, type Parameterization, pixels } from "../plugins/optimize/param.ts";
import {
  blur,
  clampRange,
  clipContribution,
  clipNorm,
  decay,
  gaussianBlur,
} from "../plugins/optimize/priors.ts";
import { adam, ascent, momentum, noiseImages, render } from "../plugins/optimize/loop.ts";

await initBackend(Deno.env.get("CONVLENS_BACKEND") ?? "cpu", { quiet: true });

/** A small RGB classifier with a linear conv tapped before its ReLU. */
function smallNet(seed = 1): Net {
  let s = seed * 100;
  const init = () => tf.initializers.glorotNormal({ seed: ++s });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 3],
        filters: 4,
        kernelSize: 3,
        name: "c1",
        kernelInitializer: init(),
      }),
      tf.layers.activation({ activation: "relu", name: "r1" }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, name: "c2", kernelInitializer: init() }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({ units: 5, name: "d", kernelInitializer: init() }),
      tf.layers.activation({ activation: "softmax", name: "probs" }),
    ],
  });
  return Net.fromModel(model, { input: { range: [0, 1] } });
}

const net = smallNet();

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

Deno.test("roll() then roll back returns the input exactly", () => {
  const before = tf.memory().numTensors;
  const x = tf.tidy(() => tf.range(0, 2 * 3 * 4 * 2).reshape([2, 3, 4, 2]) as tf.Tensor4D);
  for (const [dy, dx] of [[1, -3], [0, 0], [-2, 5], [3, 4]]) {
    const there = roll(x, dy, dx);
    const back = roll(there, -dy, -dx);
    assert.equal(maxAbsDiff(back, x), 0);
    tf.dispose([there, back]);
  }
  // A known roll: one step right moves the last column first.
  const row = tf.tensor4d([0, 1, 2, 3], [1, 1, 4, 1]);
  const r = roll(row, 0, 1);
  assert.deepEqual(Array.from(r.dataSync()), [3, 0, 1, 2]);
  tf.dispose([x, row, r]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("jitter() is undone by the opposite roll and differentiates as the lecture's procedure", () => {
  const x = tf.randomNormal([1, 5, 6, 1], 0, 1, "float32", 3) as tf.Tensor4D;
  const w = tf.randomNormal([1, 5, 6, 1], 0, 1, "float32", 4) as tf.Tensor4D;
  // Draw the same shift as jitter(2) will, then undo it.
  const probe = seededRandom(9);
  const dy = probe.int(5) - 2, dx = probe.int(5) - 2;
  const jittered = jitter(2).apply(x, seededRandom(9));
  assert.equal(maxAbsDiff(roll(jittered, -dy, -dx), x), 0);
  // d/dx sum(w * roll(x)) is w rolled back: the gradient at X_jitter, jitter undone.
  const g = tf.grad((v: tf.Tensor) =>
    jitter(2).apply(v as tf.Tensor4D, seededRandom(9)).mul(w).sum()
  )(x);
  assert.equal(maxAbsDiff(g, roll(w, -dy, -dx)), 0);
  assert.equal(maxAbsDiff(jitter(0).apply(x, seededRandom(1)), x), 0);
  tf.dispose([x, w, jittered, g]);
});

Deno.test("rotateBy() and scaleBy() are exact on known small tensors", () => {
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
  assert.equal(maxAbsDiff(rotateBy(x, 0), x), 0);
  assert.ok(maxAbsDiff(rotateBy(x, 360), x) < 1e-6);
  // 90 degrees: output (r, c) reads input (c', ...), i.e. a transpose then a flip.
  const r90 = rotateBy(x, 90);
  assert.deepEqual(Array.from(r90.dataSync()), [3, 6, 9, 2, 5, 8, 1, 4, 7]);
  assert.equal(maxAbsDiff(rotateBy(r90, -90), x), 0);
  assert.equal(maxAbsDiff(scaleBy(x, 1), x), 0);
  const ramp = tf.tensor4d([0, 1, 2, 3], [1, 1, 4, 1]);
  const s2 = scaleBy(ramp, 2);
  assert.deepEqual(Array.from(s2.dataSync()), [0.75, 1.25, 1.75, 2.25]);
  // Half size: the centre stays, the border repeats.
  const s05 = scaleBy(ramp, 0.5);
  assert.deepEqual(Array.from(s05.dataSync()), [0, 0.5, 2.5, 3]);
  const id = resample(x, [1, 0, 0, 1]);
  assert.equal(maxAbsDiff(id, x), 0);
  // Differentiable: the gradient of a sum of a 90-degree rotation is all ones.
  const g = tf.grad((v: tf.Tensor) => rotateBy(v as tf.Tensor4D, 90).sum())(x);
  assert.deepEqual(Array.from(g.dataSync()), Array(9).fill(1));
  tf.dispose([x, r90, ramp, s2, s05, id, g]);
});

Deno.test("compose() applies transforms in order from one seeded generator", () => {
  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const t = compose(jitter(2), scale([0.9, 1.1]), rotate([-10, 10]));
  const a = t.apply(x, seededRandom(4));
  const b = t.apply(x, seededRandom(4));
  assert.equal(maxAbsDiff(a, b), 0);
  assert.deepEqual(a.shape, x.shape);
  assert.throws(() => scale([]), /scale: give one or more factors/);
  assert.throws(() => jitter(-1), /jitter: pixels must be/);
  tf.dispose([x, a, b]);
});

Deno.test("fourier() maps images to spectra and back exactly (DFT as matmuls)", () => {
  const before = tf.memory().numTensors;
  for (const [h, w, c] of [[6, 5, 3], [4, 8, 1], [7, 7, 3]]) {
    const f = fourier(h, w, c, { lo: [0], hi: [1] });
    const img = tf.randomUniform([2, h, w, c], 0.05, 0.95, "float32", h * w) as tf.Tensor4D;
    const p = f.fromImage(img);
    const back = f.toImage(p);
    assert.ok(maxAbsDiff(back, img) < 1e-4, `round trip ${h}x${w}x${c}`);
    // A spectrum with only the DC term gives a flat image.
    const dc = tf.tidy(() => {
      const z = tf.buffer(p.shape as number[]);
      for (let b = 0; b < 2; b++) for (let k = 0; k < c; k++) z.set(0.01, b, k, 0, 0);
      return f.toImage(z.toTensor());
    });
    const spread = tf.tidy(() => dc.max([1, 2]).sub(dc.min([1, 2])).max().dataSync()[0]);
    assert.ok(spread < 1e-6, "flat");
    tf.dispose([img, p, back, dc]);
    f.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("lowres() upsamples detail and takes it back exactly", () => {
  const base = tf.fill([1, 12, 12, 3], 0.5) as tf.Tensor4D;
  const p = lowres(6, 4, 12, 12, base);
  const d = tf.randomNormal([2, 6, 4, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const img = p.toImage(d);
  assert.deepEqual(img.shape, [2, 12, 12, 3]);
  const up = tf.image.resizeBilinear(d, [12, 12], false, true).add(base);
  assert.ok(maxAbsDiff(img, up) < 1e-5, "same as resizeBilinear with half-pixel centres");
  const back = p.fromImage(img);
  assert.ok(maxAbsDiff(back, d) < 1e-4);
  tf.dispose([base, d, img, up, back]);
  p.dispose();
});

Deno.test("step priors: decay, blur, clipping by norm and contribution, clamp", () => {
  const at = { step: 2, grad: tf.ones([1, 4, 4, 1]) as tf.Tensor4D };
  const values = Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1));
  const x = tf.tensor4d(values, [1, 4, 4, 1]);
  const d = decay(0.25).apply(x, at);
  assert.equal(maxAbsDiff(d, x.mul(0.75)), 0);
  const flat = tf.fill([1, 6, 6, 2], 0.3) as tf.Tensor4D;
  const b = gaussianBlur(flat, 1);
  assert.ok(maxAbsDiff(b, flat) < 1e-6, "a flat image stays flat");
  const skipped = blur(1, 3).apply(x, at);
  assert.equal(maxAbsDiff(skipped, x), 0, "no blur at step 2 of every 3");
  const cn = clipNorm(25).apply(x, at);
  const zeros = tf.tidy(() => cn.equal(0).sum().dataSync()[0]);
  assert.equal(zeros, 4, "the quarter of pixels with the smallest norm are zeroed");
  assert.deepEqual(Array.from(cn.dataSync(), (v) => v + 0), [0, 0, 0, 0, ...values.slice(4)]);
  const grad = tf.tensor4d(Array.from({ length: 16 }, (_, i) => (i < 8 ? 0 : 1)), [1, 4, 4, 1]);
  const cc = clipContribution(50).apply(x, { step: 1, grad });
  assert.deepEqual(Array.from(cc.dataSync(), (v) => v + 0), [
    ...Array(8).fill(0),
    ...values.slice(8),
  ]);
  const cl = clampRange({ lo: [-1], hi: [2] }).apply(x, at);
  assert.equal(tf.tidy(() => cl.min().dataSync()[0]), -1);
  assert.equal(tf.tidy(() => cl.max().dataSync()[0]), 2);
  assert.throws(() => clipNorm(120), /percentile must be from 0 to 100/);
  tf.dispose([at.grad, x, d, flat, b, skipped, cn, grad, cc, cl]);
});

// ---------------------------------------------------------------- objectives

const target = tf.tidy(() => {
  const img = tf.randomUniform([1, 12, 12, 3], 0, 1, "float32", 77) as tf.Tensor4D;
  const r = net.forward(img, { taps: ["c1"] });
  return r.taps.c1;
});

/** Every objective, once: adding one means adding an entry here. */
const OBJECTIVES: [string, Objective][] = [
  ["classScore", classScore(1)],
  ["probability", probability([2, 3])],
  ["logProbability", logProbability(0)],
  ["neuron", neuron("c1", [3, 4, 2])],
  ["channel", channel("c2", [1, 5])],
  ["layerEnergy", layerEnergy("c2")],
  ["featureMatch", featureMatch("c1", target)],
  ["custom", custom("meanC1", ["c1"], ({ result }) => result.taps.c1.mean([1, 2, 3]))],
  ["l2", l2(1)],
  ["totalVariation", totalVariation(1, 1.5)],
  ["alphaNorm", alphaNorm(1, 6)],
  ["sum", sum(classScore(4), l2(0.01))],
  ["weighted", weighted([[0.8, channel("c2", 3)], [0.2, totalVariation(1)]])],
];

/** Every parameterization, once. */
function parameterizations(): [string, Parameterization & { dispose?: () => void }][] {
  return [
    ["pixels", pixels()],
    ["fourier", fourier(12, 12, 3, { lo: [0], hi: [1] })],
    ["lowres", lowres(6, 6, 12, 12)],
  ];
}

Deno.test("every objective rises over a few steps from a random start, in every parameterization", async () => {
  const before = tf.memory().numTensors;
  for (const [pname, param] of parameterizations()) {
    for (const [oname, objective] of OBJECTIVES) {
      const start = tf.tidy(() =>
        param.toImage(param.fromImage(noiseImages(net, 2, seededRandom(3), 0.2)))
      );
      const first = await evaluate(net, objective, start);
      const r = await render(net, {
        objective,
        init: start,
        steps: 4,
        param,
        optimizer: adam(0.02),
      });
      for (let i = 0; i < 2; i++) {
        assert.ok(
          r.values[i] > first[i],
          `${oname} under ${pname}: image ${i} went from ${first[i]} to ${r.values[i]}`,
        );
      }
      tf.dispose([start, r.images]);
    }
    param.dispose?.();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("each optimizer raises a class score", async () => {
  for (
    const optimizer of [
      ascent(0.05),
      ascent(0.05, "none"),
      ascent(0.05, "l2"),
      momentum(0.01),
      adam(0.05),
    ]
  ) {
    const start = noiseImages(net, 1, seededRandom(1));
    const first = (await evaluate(net, classScore(2), start))[0];
    const r = await render(net, { objective: classScore(2), init: start, steps: 3, optimizer });
    assert.ok(r.values[0] > first, `${optimizer.name}: ${first} -> ${r.values[0]}`);
    tf.dispose([start, r.images]);
  }
});

Deno.test("render() over 200 steps with every part leaves tf.memory().numTensors unchanged", async () => {
  const start = noiseImages(net, 2, seededRandom(2));
  const param = fourier(12, 12, 3, { lo: [0], hi: [1] });
  const before = tf.memory().numTensors;
  let calls = 0;
  const r = await render(net, {
    objective: weighted([[1, channel("c2", [0, 1])], [0.1, totalVariation(1)], [1, l2(1e-3)]]),
    init: start,
    steps: 200,
    param,
    optimizer: adam(0.05),
    transforms: [jitter(1), scale([0.95, 1.05]), rotate([-5, 5])],
    priors: [
      decay(0.01),
      blur(0.5, 4),
      clipNorm(5),
      clipContribution(5),
      clampRange(net.inputBounds()),
    ],
    rng: seededRandom(7),
    snapshots: [0, 100, 200],
    onStep: () => calls++,
  });
  assert.equal(calls, 200);
  assert.deepEqual(r.snapshots.map((s) => s.step), [0, 100, 200]);
  tf.dispose([r.images, ...r.snapshots.map((s) => s.images)]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(start);
  param.dispose();
});

Deno.test("render() gives the same image for the same seed, another for another", async () => {
  const run = async (seed: number) => {
    const start = noiseImages(net, 1, seededRandom(seed));
    const r = await render(net, {
      objective: channel("c2", 1),
      init: start,
      steps: 5,
      transforms: [jitter(2), rotate([-5, 0, 5])],
      rng: seededRandom(seed),
    });
    start.dispose();
    return r.images;
  };
  const a = await run(1), b = await run(1), c = await run(2);
  assert.equal(maxAbsDiff(a, b), 0);
  assert.ok(maxAbsDiff(a, c) > 0);
  tf.dispose([a, b, c]);
});

Deno.test("render() rejects bad input with clear errors", async () => {
  const start = noiseImages(net, 1, seededRandom(1));
  const before = tf.memory().numTensors;
  await assert.rejects(
    () => render(net, { objective: channel("conv9", 0), init: start, steps: 2 }),
    /Unknown layer "conv9".*use one of/,
  );
  await assert.rejects(
    () => render(net, { objective: neuron("c1", [3, 4, 9]), init: start, steps: 2 }),
    /outside layer "c1".*index 2 must be from 0 to 3/,
  );
  await assert.rejects(
    () => render(net, { objective: neuron("d", 5), init: start, steps: 2 }),
    /outside layer "d".*0 to 4/,
  );
  await assert.rejects(
    () => render(net, { objective: channel("c2", 6), init: start, steps: 2 }),
    /channel 6 is outside layer "c2", which has 6 channels/,
  );
  await assert.rejects(
    () => render(net, { objective: classScore(5), init: start, steps: 2 }),
    /Class index 5 is out of range/,
  );
  for (const steps of [0, -3, 1.5]) {
    await assert.rejects(
      () => render(net, { objective: classScore(1), init: start, steps }),
      /steps must be a whole number > 0/,
    );
  }
  await assert.rejects(
    () => render(net, { objective: featureMatch("c2", target), init: start, steps: 1 }),
    /take the target from the same layer/,
  );
  assert.throws(() => adam(0), /learning rate must be a number > 0/);
  assert.equal(tf.memory().numTensors, before);
  start.dispose();
});
