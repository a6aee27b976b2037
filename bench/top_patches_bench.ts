/**
 * `top-patches` over the 2,000 held-out digits, every channel of a layer.
 *
 *   deno bench -A bench/top_patches_bench.ts                       wasm
 *   CONVLENS_BACKEND=cpu deno bench -A bench/top_patches_bench.ts  pure-JS cpu
 *
 * The built-in MNIST model when `models/mnist` exists, else the same architecture
 * untrained (the cost is the same). Images/s = 2000 / time per iteration. Peak
 * memory is sampled at every batch (through the plugin's progress reports) and
 * printed after each run.
 *
 * @module
 */
import { datasetFor } from "../core/data/dataset_for.ts";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { loadNet } from "../core/load.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { checkParams, type Context } from "../core/plugin.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { topPatches } from "../plugins/inspect/top_patches.ts";
import { buildMnistModel } from "../core/builtin/mnist.ts";

const backend = await initBackend(Deno.env.get("CONVLENS_BACKEND") ?? "wasm", { quiet: true });
const dir = decodeURIComponent(new URL("../models/mnist/", import.meta.url).pathname);
const builtIn = await Deno.stat(`${dir}model.json`).then(() => true, () => false);
const net = builtIn ? await loadNet(dir) : Net.fromModel(buildMnistModel(1));
await heldOutDigits({ count: 1 }).then((d) => d.images.dispose()); // parse MNIST once

let peak = { rss: 0, heap: 0 };
const sample = () => {
  const m = Deno.memoryUsage();
  peak = { rss: Math.max(peak.rss, m.rss), heap: Math.max(peak.heap, m.heapUsed) };
};
const ctx: Context = {
  net,
  images: imagesFromPixels(net, tf.zeros([1, 28, 28, 1]) as tf.Tensor4D),
  rng: seededRandom(0),
  seed: 0,
  progress: sample,
  warn: () => {},
  run: () => Promise.reject(new Error("unused")),
  runOn: () => Promise.reject(new Error("unused")),
  data: () => datasetFor(net),
};
const MB = 1024 * 1024;

for (const [layer, project] of [["conv2", false], ["conv4", false], ["conv4", true]] as const) {
  const channels = net.layer(layer).outputShape[2];
  const params = checkParams(topPatches, net, {
    layer,
    count: 2000,
    k: 9,
    maxChannels: channels,
    project,
    batchSize: 64,
  });
  Deno.bench({
    name: `${backend}: top-patches ${layer} (${channels} channels, k 9${
      project ? ", with projections" : ""
    }) over 2000 held-out digits${builtIn ? "" : " (untrained net)"}`,
    group: "top-patches",
    n: 3,
    warmup: 1,
    async fn(b) {
      peak = { rss: 0, heap: 0 };
      const before = Deno.memoryUsage();
      b.start();
      const r = await topPatches.run(ctx, params);
      b.end();
      r.dispose();
      console.log(
        `  ${layer}${project ? " +proj" : ""}: peak rss ${(peak.rss / MB).toFixed(0)} MB ` +
          `(start ${(before.rss / MB).toFixed(0)} MB), peak JS heap ${
            (peak.heap / MB).toFixed(0)
          } MB, tensors ${tf.memory().numTensors}`,
      );
    },
  });
}
