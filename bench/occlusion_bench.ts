/**
 * Occlusion sweep vs plain batched forward on the same net and backend.
 *
 *   deno bench -A bench/occlusion_bench.ts                       wasm
 *   CONVLENS_BACKEND=cpu deno bench -A bench/occlusion_bench.ts  pure-JS cpu (slow)
 *
 * The VGG-style 64x64x3 net of `workloads.ts`; an 8x8 square with stride 4 gives
 * 15 x 15 = 225 occluded images, against a forward pass of 225 images, both in
 * batches of 64. The target: the sweep within 1.3x of the plain forward.
 *
 * @module
 */
import { datasetFor } from "../core/data/dataset_for.ts";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { checkParams, type Context } from "../core/plugin.ts";
import { occlusion, occlusionMaps } from "../plugins/attribute/occlusion.ts";
import { vggNet } from "./workloads.ts";

const backend = await initBackend(Deno.env.get("CONVLENS_BACKEND") ?? "wasm", { quiet: true });
const net = Net.fromModel(vggNet());
const image = tf.randomUniform([1, 64, 64, 3], 0, 1, "float32", 1) as tf.Tensor4D;
const batch225 = tf.randomUniform([225, 64, 64, 3], 0, 1, "float32", 2) as tf.Tensor4D;
const images = imagesFromPixels(net, image.clone());
const ctx: Context = {
  net,
  images,
  rng: seededRandom(0),
  seed: 0,
  progress: () => {},
  warn: () => {},
  run: () => Promise.reject(new Error("unused")),
  runOn: () => Promise.reject(new Error("unused")),
  data: () => datasetFor(net),
};
const params = checkParams(occlusion, net, { size: 8, stride: 4, batchSize: 64, fill: 0.5 });
const heavy = backend === "cpu" ? { n: 3, warmup: 1 } : {};
const group = `225 images, ${backend}`;

Deno.bench({
  name: `${backend}: plain forward of 225 images (model.predict, batch 64)`,
  group,
  baseline: true,
  ...heavy,
  fn() {
    const y = (net.model as tf.LayersModel).predict(batch225, { batchSize: 64 }) as tf.Tensor;
    y.dataSync();
    y.dispose();
  },
});

Deno.bench({
  name: `${backend}: plain forward of 225 images (Net.probabilities, batch 64)`,
  group,
  ...heavy,
  fn() {
    const y = net.predictInBatches(batch225, 64);
    y.dataSync();
    y.dispose();
  },
});

Deno.bench({
  name: `${backend}: occlusionMaps, 8x8 square, stride 4 (225 images, batch 64)`,
  group,
  ...heavy,
  fn() {
    const maps = occlusionMaps(net, image, {
      size: 8,
      stride: 4,
      fill: [0.5],
      classIndex: 0,
      layer: net.convLayers().at(-1)!.name,
      channel: 0,
      batchSize: 64,
    });
    maps.probability.dataSync();
    tf.dispose([maps.probability, maps.activation, maps.classes]);
  },
});

Deno.bench({
  name: `${backend}: occlusion plugin with its figure (225 images, batch 64)`,
  group,
  ...heavy,
  async fn() {
    const r = await occlusion.run(ctx, params);
    r.dispose();
  },
});
