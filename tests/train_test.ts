import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { type DataSource, tensorSource } from "../core/data/source.ts";
import { fit, type FitOptions } from "../core/train/fit.ts";
import { makeOptimizer } from "../core/train/optimizers.ts";
import { learningRateAt } from "../core/train/schedule.ts";
import { evaluate } from "../core/train/metrics.ts";
import { shiftFlip } from "../core/train/shift_flip.ts";
import { WARP_AFFINE_KERNEL } from "../core/images/warp_kernel.ts";
import { seededRandom } from "../core/random.ts";
import { Result } from "../core/result.ts";
import { loadNet } from "../core/load.ts";

await initBackend("wasm", { quiet: true });

/** 8x8 images of a vertical (class 0) or horizontal (class 1) bar at a random place, plus noise. */
function bars(n: number, seed: number): { images: tf.Tensor4D; labels: number[] } {
  const r = seededRandom(seed);
  const px = new Float32Array(n * 64);
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    const c = k % 2, at = 1 + r.int(6);
    for (let i = 0; i < 8; i++) px[k * 64 + (c === 0 ? i * 8 + at : at * 8 + i)] = 1;
    for (let i = 0; i < 64; i++) px[k * 64 + i] += 0.2 * r.next();
    labels.push(c);
  }
  return { images: tf.tensor4d(px, [n, 8, 8, 1]), labels };
}

function barsModel(seed: number, head: "softmax" | "sigmoid" = "softmax"): tf.Sequential {
  let s = seed * 10;
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [8, 8, 1],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.heNormal({ seed: ++s }),
      }),
      tf.layers.flatten(),
      tf.layers.dropout({ name: "dropout", rate: 0.1, seed: 77 }),
      tf.layers.dense({
        name: "logits",
        units: head === "softmax" ? 2 : 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed: ++s }),
      }),
      tf.layers.activation({ name: "probs", activation: head }),
    ],
  });
}

async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return await Promise.all(model.getWeights().map((w) => w.data() as Promise<Float32Array>));
}

const train = bars(96, 1), valid = bars(64, 2);
const trainSource: DataSource = tensorSource(train.images, train.labels, [
  "vertical",
  "horizontal",
]);
const validSource: DataSource = tensorSource(valid.images, valid.labels, [
  "vertical",
  "horizontal",
]);
const base: FitOptions = {
  epochs: 3,
  batchSize: 16,
  seed: 5,
  validation: validSource,
  schedule: { kind: "cosine", learningRate: 0.02, warmupSteps: 3 },
  augment: shiftFlip({ maxShift: 1, flip: true }),
};

Deno.test("fit() learns a separable problem, leaks nothing and logs every epoch", async () => {
  const model = barsModel(1);
  const before = tf.memory().numTensors;
  const logs: number[] = [];
  const r = await fit(model, trainSource, {
    ...base,
    epochs: 6,
    onEpoch: (l) => void logs.push(l.epoch),
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(logs, [1, 2, 3, 4, 5, 6]);
  const last = r.history.at(-1)!;
  assert.ok(last.valAccuracy! >= 0.95, `validation accuracy ${last.valAccuracy}`);
  assert.ok(last.loss < r.history[0].loss, "training loss fell");
  assert.equal(last.valTopK, 1); // two classes: top-5 always holds the right one
  // The schedule ran to its end: cosine from 0.02 down to 0 at the last step.
  assert.ok(last.learningRate < 1e-3);
  const m = await evaluate(model, validSource);
  assert.ok(Math.abs(m.accuracy - last.valAccuracy!) < 1e-9);
  model.dispose();
});

Deno.test("fit() is deterministic under a seed: the same weights twice, others under another seed", async () => {
  const run = async (seed: number) => {
    const model = barsModel(1);
    await fit(model, trainSource, { ...base, seed });
    const w = await weightsOf(model);
    model.dispose();
    return w;
  };
  const [a, b, c] = [await run(5), await run(5), await run(6)];
  // Dropout masks included: fit seeds them per step and puts the layer's seed back.
  a.forEach((w, i) => assert.deepEqual(w, b[i]));
  const m = barsModel(1);
  await fit(m, trainSource, { ...base, epochs: 1 });
  assert.equal((m.getLayer("dropout") as unknown as { seed: number }).seed, 77);
  m.dispose();
  assert.ok(a.some((w, i) => w.some((v, j) => v !== c[i][j])));
});

Deno.test("a run killed after an epoch resumes from its checkpoint to the same weights", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const whole = barsModel(2);
    const full = await fit(whole, trainSource, { ...base, optimizer: { name: "adamw" } });
    const want = await weightsOf(whole);
    whole.dispose();

    const killed = barsModel(2);
    await assert.rejects(
      fit(killed, trainSource, {
        ...base,
        optimizer: { name: "adamw" },
        checkpoint: dir,
        onEpoch: (l) => {
          if (l.epoch === 2) throw new Error("killed");
        },
      }),
      /killed/,
    );
    killed.dispose();
    // A fresh process would build the model afresh: its weights come from the checkpoint.
    const resumed = barsModel(9);
    const r = await fit(resumed, trainSource, {
      ...base,
      optimizer: { name: "adamw" },
      checkpoint: dir,
    });
    assert.equal(r.resumedEpochs, 2);
    assert.equal(r.history.length, 3);
    assert.deepEqual(r.history.map((h) => h.valLoss), full.history.map((h) => h.valLoss));
    const got = await weightsOf(resumed);
    got.forEach((w, i) => assert.deepEqual(w, want[i]));
    await assert.rejects(
      fit(resumed, trainSource, { ...base, seed: 99, checkpoint: dir }),
      /seed 5 and 3 epochs, not seed 99/,
    );
    resumed.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("early stopping stops when validation loss rises and puts the best epoch's weights back", async () => {
  // The rate jumps 300-fold after the first epoch, so validation loss gets worse.
  const schedule = { kind: "step", learningRate: 0.01, milestones: [1], gamma: 300 } as const;
  const once = barsModel(3);
  const one = await fit(once, trainSource, { ...base, epochs: 1, schedule, augment: undefined });
  const want = await weightsOf(once);
  once.dispose();
  const model = barsModel(3);
  const r = await fit(model, trainSource, {
    ...base,
    epochs: 6,
    schedule,
    augment: undefined,
    earlyStopping: { patience: 2 },
  });
  assert.ok(r.stoppedEarly);
  assert.equal(r.history.length, 3);
  assert.equal(r.bestEpoch, 1);
  assert.ok(r.history[1].valLoss! > one.history[0].valLoss!);
  (await weightsOf(model)).forEach((w, i) => assert.deepEqual(w, want[i]));
  model.dispose();
});

Deno.test("fit() trains a one-sigmoid binary head and takes logits from a named layer", async () => {
  const model = barsModel(4, "sigmoid");
  const r = await fit(model, trainSource, {
    ...base,
    epochs: 8,
    augment: undefined,
  });
  assert.ok(r.history.at(-1)!.valAccuracy! >= 0.9, `${r.history.at(-1)!.valAccuracy}`);
  model.dispose();
  const soft = barsModel(4);
  const r2 = await fit(soft, trainSource, {
    ...base,
    epochs: 8,
    augment: undefined,
    logits: "logits",
  });
  assert.ok(r2.history.at(-1)!.valAccuracy! >= 0.9);
  soft.dispose();
});

Deno.test("fit() refuses data that does not fit the model, and bad options, saying how", async () => {
  const model = barsModel(1);
  const wrong = tensorSource(tf.zeros([4, 9, 9, 1]) as tf.Tensor4D, [0, 1, 0, 1]);
  await assert.rejects(fit(model, wrong), /holds 9x9x1 images but the model takes 8x8x1/);
  await assert.rejects(fit(model, trainSource, { epochs: 0 }), /epochs 0 is invalid/);
  await assert.rejects(
    fit(model, trainSource, { logits: "nope" }),
    /logits layer "nope" is not in the model/,
  );
  await assert.rejects(
    fit(model, trainSource, { epochs: 1, earlyStopping: { patience: 1 } }),
    /early stopping on valLoss needs a validation source/,
  );
  model.dispose();
});

Deno.test("Adam and SGD with momentum take the steps of tfjs's own, and AdamW decays decoupled", () => {
  const grad = (w: tf.Variable) =>
    tf.variableGrads(
      () => w.sub(tf.tensor1d([1, -2, 3])).square().mul(tf.tensor1d([1, 2, 3])).sum() as tf.Scalar,
      [w],
    );
  for (
    const [ours, theirs] of [
      [makeOptimizer({ name: "adam" }), tf.train.adam(0.05)],
      [makeOptimizer({ name: "sgd", momentum: 0.9 }), tf.train.momentum(0.05, 0.9)],
      [
        makeOptimizer({ name: "sgd", momentum: 0.8, nesterov: true }),
        tf.train.momentum(0.05, 0.8, true),
      ],
    ] as const
  ) {
    const a = tf.variable(tf.tensor1d([0.5, 0.1, -0.3])), b = tf.variable(a.clone());
    for (let i = 0; i < 20; i++) {
      const ga = grad(a), gb = grad(b);
      ours.step([[a, ga.grads[a.name]]], 0.05);
      theirs.applyGradients([{ name: b.name, tensor: gb.grads[b.name] }]);
      tf.dispose([ga.value, gb.value, ...Object.values(ga.grads), ...Object.values(gb.grads)]);
    }
    const [x, y] = [a.dataSync(), b.dataSync()];
    x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) < 1e-5, `${ours.options.name}: ${x} vs ${y}`));
    ours.dispose();
    theirs.dispose();
    tf.dispose([a, b]);
  }
  // AdamW: one step from w with gradient g: w - lr * g/(|g| + eps) - lr * wd * w (kernels only).
  const opt = makeOptimizer({ name: "adamw", weightDecay: 0.1 });
  const k = tf.variable(tf.tensor2d([[2, -4]])), bias = tf.variable(tf.tensor1d([2]));
  opt.step([[k, tf.tensor2d([[0.5, -0.5]])], [bias, tf.tensor1d([0.5])]], 0.01);
  const kv = k.dataSync(), bv = bias.dataSync();
  assert.ok(Math.abs(kv[0] - (2 - 0.01 - 0.01 * 0.1 * 2)) < 1e-6, `${kv}`);
  assert.ok(Math.abs(kv[1] - (-4 + 0.01 + 0.01 * 0.1 * 4)) < 1e-6, `${kv}`);
  assert.ok(Math.abs(bv[0] - (2 - 0.01)) < 1e-6, `bias not decayed: ${bv}`);
  opt.dispose();
  tf.dispose([k, bias]);
  assert.throws(
    () => makeOptimizer({ name: "lbfgs" as "adam" }),
    /"lbfgs" is unknown; give one of sgd, adam, adamw/,
  );
});

Deno.test("schedules: warmup rises linearly, step decays at milestones, cosine ends at its floor", () => {
  const at = (s: Parameters<typeof learningRateAt>[0], step: number) =>
    learningRateAt(s, step, 100, 10);
  const warm = { learningRate: 1, warmupSteps: 4 };
  assert.deepEqual([0, 1, 2, 3, 4, 50].map((i) => at(warm, i)), [0.25, 0.5, 0.75, 1, 1, 1]);
  const step = { kind: "step", learningRate: 1, milestones: [3, 6], gamma: 0.1 } as const;
  assert.deepEqual([29, 30, 59, 60].map((i) => Number(at(step, i).toPrecision(3))), [
    1,
    0.1,
    0.1,
    0.01,
  ]);
  const cos = { kind: "cosine", learningRate: 1, finalFraction: 0.1 } as const;
  assert.equal(at(cos, 0), 1);
  assert.ok(Math.abs(at(cos, 99) - 0.1) < 1e-12);
  assert.ok(Math.abs(at(cos, 49.5) - 0.55) < 1e-9);
  assert.throws(() => at({ learningRate: 0 }, 0), /learning rate 0 is invalid/);
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`shiftFlip() moves each image by the whole pixels it drew and mirrors exactly (${backend})`, async () => {
    await initBackend(backend, { quiet: true });
    const px = new Float32Array(40 * 7 * 7);
    for (let k = 0; k < 40; k++) px[k * 49 + 3 * 7 + 2] = 1; // one dot at row 3, column 2
    const x = tf.tensor4d(px, [40, 7, 7, 1]);
    const s = 2;
    const y = shiftFlip({ maxShift: s, flip: true })(x, seededRandom(3), 0);
    const v = (await y.data()) as Float32Array;
    // Without the warp kernel (as on WebGPU) the batched crop gives the same bits.
    const kernel = tf.getKernel(WARP_AFFINE_KERNEL, backend)!;
    tf.unregisterKernel(WARP_AFFINE_KERNEL, backend);
    try {
      const z = shiftFlip({ maxShift: s, flip: true })(x, seededRandom(3), 0);
      assert.deepEqual(await z.data(), v, "the crop path equals the kernel");
      z.dispose();
    } finally {
      tf.registerKernel(kernel);
    }
    // The same draws, in shiftFlip's order: dy, dx, then whether mirrored.
    const rng = seededRandom(3);
    let mirrored = 0, unshiftedRows = 0;
    for (let k = 0; k < 40; k++) {
      const dy = rng.int(2 * s + 1), dx = rng.int(2 * s + 1);
      const flip = rng.next() < 0.5;
      // The crop starts at padded (dy, dx): output (i, j) is input (i + dy - s, j + dx - s),
      // mirrored j -> w - 1 - j.
      const row = 3 - dy + s;
      const col = flip ? 7 - 1 - (2 - dx + s) : 2 - dx + s;
      const img = v.subarray(k * 49, (k + 1) * 49);
      const inside = row >= 0 && row < 7 && col >= 0 && col < 7;
      assert.equal(
        img.reduce((a, b) => a + b, 0),
        inside ? 1 : 0,
        "one whole pixel, nothing blurred",
      );
      if (inside) {
        assert.equal(img[row * 7 + col], 1, `image ${k}: dot at row ${row}, column ${col}`);
      }
      if (flip) mirrored++;
      if (dy === s && dx !== s) unshiftedRows++;
    }
    assert.ok(mirrored > 5 && mirrored < 35, `${mirrored} of 40 mirrored`);
    assert.ok(unshiftedRows > 0, "some images shift only sideways (the case WASM once lost)");
    tf.dispose([x, y]);
  });
}

Deno.test("a Result carries a trained model and saves it as a LayersModel folder that loads again", async () => {
  const dir = await Deno.makeTempDir();
  const before = tf.memory().numTensors;
  try {
    const model = barsModel(7);
    await fit(model, trainSource, { ...base, epochs: 1 });
    const want = tf.tidy(() => (model.predict(valid.images) as tf.Tensor).dataSync());
    const r = new Result("train-bars", "bars").setModel(model, {
      name: "bars",
      labels: ["vertical", "horizontal"],
    });
    const written = await r.save(dir);
    assert.ok(written.includes(`${dir}/train-bars-model/model.json`));
    assert.equal(
      JSON.parse(await Deno.readTextFile(`${dir}/train-bars.json`)).model,
      "train-bars-model/model.json",
    );
    r.dispose();
    assert.equal(tf.memory().numTensors, before);
    const net = await loadNet(`${dir}/train-bars-model`);
    assert.deepEqual(net.sidecar.labels, ["vertical", "horizontal"]);
    const got = tf.tidy(() => (net.model as tf.LayersModel).predict(valid.images) as tf.Tensor);
    (await got.data()).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
    got.dispose();
    net.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Result.save refuses an empty folder and the filesystem root", async () => {
  const r = new Result("x", "x").figure("a", 1);
  for (const dir of ["", "/", "//"]) {
    await assert.rejects(r.save(dir), /empty or the filesystem root; give a folder/);
  }
});

Deno.test("fit() gives dropout a fresh mask seed at every step (a fixed seed would drop the same units: pruning)", async () => {
  const model = barsModel(3);
  const seen: (number | undefined)[] = [];
  await fit(model, trainSource, {
    ...base,
    epochs: 2,
    // The augment hook runs once per step, inside the step: it sees the layer's seed then.
    augment: (x) => {
      seen.push((model.getLayer("dropout") as unknown as { seed?: number }).seed);
      return x.clone();
    },
  });
  assert.ok(seen.length >= 4, `${seen.length} steps`);
  assert.ok(new Set(seen).size >= seen.length - 1, `seeds per step: ${seen}`);
  assert.ok(seen.some((s) => s !== 77), "the layer's own seed was used at every step");
  assert.equal((model.getLayer("dropout") as unknown as { seed: number }).seed, 77);
  model.dispose();
});
