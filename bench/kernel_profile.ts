/**
 * Where the time of a real-size forward pass and input gradient goes, kernel by
 * kernel: tfjs's `profile()` around one call (after a warm-up call) of
 * convlens's `Net.forward` and `gradient` on ResNet-50, VGG16 or MobileNetV2
 * at 224x224 (random weights), as a markdown table per pass. Kernel times
 * nest: a `name__op` scope's time includes the kernels inside it, so the
 * column does not sum to the wall time.
 *
 * Usage: deno run -A bench/kernel_profile.ts [--arch resnet50] [--batch 1] [--top 14]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { gradient } from "../core/gradients.ts";
import type { Objective } from "../core/objective.ts";
import { mobilenetV2, resnet50, vgg16 } from "../plugins/design/architectures.ts";
import { medianMs } from "./workloads.ts";

const { values } = parseArgs({
  options: {
    arch: { type: "string", default: "resnet50" },
    batch: { type: "string", default: "1" },
    top: { type: "string", default: "14" },
    backend: { type: "string", default: "wasm" },
  },
});
const builders = { resnet50, vgg16, mobilenet: mobilenetV2 };
const build = builders[values.arch as keyof typeof builders];
if (!build) throw new RangeError(`Unknown --arch ${values.arch}: ${Object.keys(builders)}`);
await initBackend(values.backend, { quiet: true });
const net = Net.fromModel(build());
const x = tf.randomUniform([Number(values.batch), 224, 224, 3], 0, 1, "float32", 1);
const score: Objective = {
  name: "channel 7",
  output: true,
  perImage: ({ result }) =>
    result.output.slice([0, 0, 0, 7], [-1, -1, -1, 1]).mean([1, 2, 3]) as tf.Tensor1D,
};
const passes: [string, () => tf.Tensor][] = [
  ["forward", () => net.forward(x).output],
  ["input gradient", () => {
    const r = gradient(net, x, score);
    r.value.dispose();
    return r.grad;
  }],
];
for (const [name, f] of passes) {
  const wall = medianMs(
    () => {
      const t = f();
      t.dataSync();
      t.dispose();
    },
    1,
    3,
  );
  const prof = await tf.profile(() => {
    const t = f();
    t.dataSync();
    return t;
  });
  (prof.result as tf.Tensor).dispose();
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of prof.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls++;
    byKernel.set(k.name, e);
  }
  const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top));
  console.log(
    `\n${values.arch} ${name}, batch ${values.batch}: ${wall.toFixed(0)} ms wall (median of 3)\n`,
  );
  console.log("| kernel | ms | calls |\n|---|---|---|");
  for (const [k, e] of rows) console.log(`| ${k} | ${e.ms.toFixed(1)} | ${e.calls} |`);
}
x.dispose();
net.dispose();
