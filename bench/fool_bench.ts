/**
 * Speed of the fool family on the built-in MNIST model: PGD (L-inf, eps 0.3) in
 * batches, FGSM, and one generation of the evolutionary fooling images. The time
 * per iteration of `pgd 10 steps, batch B` gives images per second of 40-step PGD
 * as `B / (4 * time)`.
 *
 * The backend is the one `CONVLENS_BACKEND` names (default `auto`); run once per
 * backend:
 *
 * ```sh
 * CONVLENS_BACKEND=wasm deno bench -A bench/fool_bench.ts
 * CONVLENS_BACKEND=cpu deno bench -A bench/fool_bench.ts
 * CONVLENS_BACKEND=webgpu deno bench -A bench/fool_bench.ts
 * ```
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { attack } from "../plugins/fool/adversarial.ts";
import { foolByEvolution } from "../plugins/fool/fooling_images.ts";

const backend = await initBackend(undefined, { quiet: true });
const net = await loadNet(new URL("../models/mnist", import.meta.url).pathname);
const { images, labels } = await heldOutDigits({ count: 64 });

async function pgd(batch: number, steps: number, method: "pgd" | "fgsm" = "pgd"): Promise<void> {
  const x = tf.tidy(() => images.slice([0, 0, 0, 0], [batch, -1, -1, -1])) as tf.Tensor4D;
  const adv = await attack(net, x, labels.slice(0, batch), {
    method,
    epsilon: 0.3,
    steps,
    batchSize: batch,
  });
  await adv.data();
  tf.dispose([x, adv]);
}

for (const batch of [1, 16, 64]) {
  Deno.bench({
    name: `pgd 10 steps, batch ${batch} (${backend})`,
    group: "pgd",
    baseline: batch === 64,
    n: batch === 1 ? 10 : 3,
    warmup: 1,
    fn: () => pgd(batch, 10),
  });
}

Deno.bench({
  name: `fgsm, batch 64 (${backend})`,
  group: "fgsm",
  n: 5,
  warmup: 1,
  fn: () => pgd(64, 1, "fgsm"),
});

Deno.bench({
  name: `evolution: 1 generation, 10 classes x 16 children (${backend})`,
  group: "evolution",
  n: 3,
  warmup: 1,
  fn: async () => {
    const out = await foolByEvolution(net, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], {
      generations: 1,
      population: 16,
    });
    out.images.dispose();
  },
});
