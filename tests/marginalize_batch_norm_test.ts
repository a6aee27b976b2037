/**
 * Batch normalization's two modes under `fit`: training steps normalize by the
 * batch's statistics and move the moving averages (an exponential moving
 * average of the batch means and variances, momentum as the layer says);
 * validation and inference use the moving statistics and leave them alone.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { tensorSource } from "../core/data/source.ts";
import { fit } from "../core/train/fit.ts";
import { mixSeed, seededRandom } from "../core/random.ts";

await initBackend("wasm", { quiet: true });

const MOMENTUM = 0.9;

/** BN straight on the input: its batch statistics are the data's, whatever the weights do. */
function bnModel(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.batchNormalization({ inputShape: [3, 3, 2], momentum: MOMENTUM, name: "bn" }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({
        units: 2,
        name: "logits",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.activation({ activation: "softmax", name: "probs" }),
    ],
  });
}

function data(): { x: tf.Tensor4D; labels: number[] } {
  const x = tf.tidy(() =>
    tf.randomNormal([16, 3, 3, 2], 0, 1, "float32", 3).mul(tf.tensor1d([2, 0.5]))
      .add(tf.tensor1d([1, -3]))
  ) as tf.Tensor4D;
  return { x, labels: Array.from({ length: 16 }, (_, i) => i % 2) };
}

/** Per-channel mean and biased variance of images at `indices`. */
async function stats(x: tf.Tensor4D, indices: number[]): Promise<{ mean: number[]; v: number[] }> {
  const m = tf.tidy(() => tf.moments(tf.gather(x, indices), [0, 1, 2]));
  const out = { mean: Array.from(await m.mean.data()), v: Array.from(await m.variance.data()) };
  tf.dispose([m.mean, m.variance]);
  return out;
}

function close(got: ArrayLike<number>, want: number[], tol: number, what: string): void {
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < tol, `${what}[${i}]: ${got[i]} vs ${w}`));
}

Deno.test("fit's training steps move batch norm's moving mean and variance by the EMA of the batch statistics", async () => {
  const { x, labels } = data();
  const source = tensorSource(x, labels);
  const model = bnModel();
  const before = tf.memory().numTensors;
  const seed = 5, epochs = 2, batchSize = 4;
  await fit(model, source, {
    epochs,
    batchSize,
    seed,
    optimizer: { name: "sgd" },
    schedule: { learningRate: 0.1 },
  });
  // The batches fit drew, in its order: the same seeded shuffle per epoch.
  let mean = [0, 0], v = [1, 1];
  for (let e = 0; e < epochs; e++) {
    const order = seededRandom(mixSeed(seed, e)).shuffle(Array.from({ length: 16 }, (_, i) => i));
    for (let b = 0; b < 16 / batchSize; b++) {
      const s = await stats(x, order.slice(b * batchSize, (b + 1) * batchSize));
      mean = mean.map((m, c) => MOMENTUM * m + (1 - MOMENTUM) * s.mean[c]);
      v = v.map((m, c) => MOMENTUM * m + (1 - MOMENTUM) * s.v[c]);
    }
  }
  const [, , movingMean, movingVar] = model.getLayer("bn").getWeights();
  close(await movingMean.data(), mean, 1e-4, "moving mean");
  close(await movingVar.data(), v, 1e-4, "moving variance");
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
  x.dispose();
});

Deno.test("validation and inference normalize by the moving statistics and leave them as they are", async () => {
  const { x, labels } = data();
  const source = tensorSource(x, labels);
  const a = bnModel(), b = bnModel();
  const options = {
    epochs: 2,
    batchSize: 8,
    seed: 1,
    optimizer: { name: "sgd" as const },
    schedule: { learningRate: 0.1 },
  };
  await fit(a, source, options);
  await fit(b, source, { ...options, validation: source });
  const wa = a.getWeights(), wb = b.getWeights();
  for (const [i, w] of wa.entries()) {
    close(await wb[i].data(), Array.from(await w.data()), 1e-6, `weight ${i}`);
  }
  // Inference: (x - moving mean) / sqrt(moving variance + eps) * gamma + beta.
  const bn = a.getLayer("bn");
  const probe = tf.model({ inputs: a.inputs, outputs: bn.output as tf.SymbolicTensor });
  const [gamma, beta, mm, mv] = bn.getWeights();
  const eps = (bn.getConfig() as { epsilon: number }).epsilon;
  const got = probe.predict(x) as tf.Tensor;
  const want = tf.tidy(() => x.sub(mm).div(mv.add(eps).sqrt()).mul(gamma).add(beta));
  const d = tf.tidy(() => got.sub(want).abs().max());
  assert.ok((await d.data())[0] < 1e-5);
  // And not by the batch's own statistics (which would give zero-mean channels).
  const m = tf.tidy(() => tf.moments(got, [0, 1, 2]).mean.abs().max());
  assert.ok((await m.data())[0] > 0.05);
  tf.dispose([got, want, d, m]);
  a.dispose();
  b.dispose();
  x.dispose();
});
