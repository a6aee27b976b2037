/**
 * Steps per second of the optimization loop (`plugins/optimize/loop.ts`) on the
 * built-in MNIST model, per backend: the class-model loop (all 10 classes as one
 * batch, s_y - lambda ||X||^2, momentum) and the DeepDream loop (one image, the
 * energy of conv4, jitter, normalized steps, clamp). Each iteration is 10 steps:
 * steps/s = 10 / (time per iteration).
 *
 *   deno bench -A bench/optimize_bench.ts
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { seededRandom } from "../core/random.ts";
import { classScore, l2, layerEnergy, sum } from "../plugins/optimize/objectives.ts";
import { ascent, momentum, render } from "../plugins/optimize/loop.ts";
import { clampRange } from "../plugins/optimize/priors.ts";
import { jitter } from "../plugins/optimize/transforms.ts";

const STEPS = 10;
await initBackend("wasm", { quiet: true });
const net = await loadNet(new URL("../models/mnist/", import.meta.url).pathname);
const digits = await heldOutDigits({ count: 1 });
const digit = net.fromPixels(digits.images) as tf.Tensor4D;
const zeros = tf.zeros([10, 28, 28, 1]) as tf.Tensor4D;
const classes = Array.from({ length: 10 }, (_, i) => i);

for (const backend of ["wasm", "cpu"]) {
  const heavy = backend === "cpu";
  Deno.bench({
    name: `${backend}: class-model loop, batch 10, ${STEPS} steps`,
    group: "class-model",
    baseline: backend === "wasm",
    n: heavy ? 3 : 20,
    warmup: heavy ? 1 : 3,
    async fn(b) {
      await initBackend(backend, { quiet: true });
      b.start();
      const r = await render(net, {
        objective: sum(classScore(classes), l2(0.01)),
        init: zeros,
        steps: STEPS,
        optimizer: momentum(0.05),
      });
      b.end();
      r.images.dispose();
    },
  });
  Deno.bench({
    name: `${backend}: deep-dream loop (conv4), batch 1, ${STEPS} steps`,
    group: "deep-dream",
    baseline: backend === "wasm",
    n: heavy ? 3 : 20,
    warmup: heavy ? 1 : 3,
    async fn(b) {
      await initBackend(backend, { quiet: true });
      b.start();
      const r = await render(net, {
        objective: layerEnergy("conv4"),
        init: digit,
        steps: STEPS,
        optimizer: ascent(0.01),
        transforms: [jitter(2)],
        priors: [clampRange(net.inputBounds())],
        rng: seededRandom(0),
      });
      b.end();
      r.images.dispose();
    },
  });
}
