/**
 * Correctness on a real GPU: runs plugins on the WebGPU backend and on the pure-JS
 * CPU backend with the built-in MNIST model and the sample digits in
 * `scripts/examples/images/`, and compares their figures and tensors. Prints one
 * JSON object. Bundled and run by the commands in `bench/gpu_build.sh` (the GPU
 * machine has no network, so it reads no npm data set: held-out plugins are left out).
 *
 * Usage: deno run -A bench/gpu_check.ts
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend, probeGpu } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { Registry } from "../core/plugin.ts";
import { runPlugin } from "../core/runner.ts";
import { builtinPlugins } from "../plugins/mod.ts";

const PLUGINS: [string, Record<string, unknown>][] = [
  ["summary", {}],
  ["activations", { layer: "conv2" }],
  ["filters", {}],
  ["occlusion", { stride: 2 }],
  ["saliency", {}],
  ["deconvnet", {}],
  ["guided-backprop", {}],
  ["smoothgrad", { samples: 8 }],
  ["grad-cam", {}],
  ["guided-grad-cam", {}],
  ["integrated-gradients", { steps: 32 }],
  ["class-model", { steps: 20, classes: [0, 1, 2] }],
  ["deep-dream", { steps: 5, octaves: 2 }],
  ["invert", { steps: 20, starts: 1, layers: "conv1,conv4" }],
  ["adversarial", { method: "pgd", steps: 10 }],
  ["fooling-images", { steps: 20, classes: [0, 1] }],
];
// Four held-out digits as 8-bit values (no image decoder or data set needed).
const DIGITS = JSON.parse(await Deno.readTextFile("bench/gpu_digits.json")) as {
  labels: number[];
  shape: [number, number, number, number];
  pixels255: number[];
};

async function runAll(backend: string) {
  await initBackend(backend, { quiet: true });
  const net = await loadNet("models/mnist");
  const pixels = tf.tensor4d(DIGITS.pixels255.map((v) => v / 255), DIGITS.shape);
  const images = imagesFromPixels(net, pixels, DIGITS.labels);
  const registry = new Registry(builtinPlugins);
  const out: Record<
    string,
    { ms: number; figures: Record<string, unknown>; tensors: Record<string, number[]> } | string
  > = {};
  for (const [name, params] of PLUGINS) {
    const t0 = performance.now();
    try {
      const r = await runPlugin(net, images, name, params, { registry });
      const tensors: Record<string, number[]> = {};
      for (const [k, t] of Object.entries(r.tensors)) tensors[k] = Array.from(await t.data());
      out[name] = { ms: performance.now() - t0, figures: r.figures, tensors };
      r.dispose();
    } catch (err) {
      out[name] = `error: ${(err as Error).message.split("\n")[0]}`;
    }
  }
  tf.dispose([images.pixels, images.x]);
  net.dispose();
  return out;
}

function relDiff(a: number[], b: number[]): number {
  let scale = 1e-6, diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / scale;
}

const gpu = await probeGpu();
// `--quick` (a local smoke test of the bundle) runs only the first plugins.
if (Deno.args.includes("--quick")) PLUGINS.splice(3);
const onGpu = await runAll("webgpu");
const onCpu = await runAll("cpu");
const report: Record<string, unknown> = {};
for (const [name] of PLUGINS) {
  const g = onGpu[name], c = onCpu[name];
  if (typeof g === "string" || typeof c === "string") {
    report[name] = {
      webgpu: typeof g === "string" ? g : "ok",
      cpu: typeof c === "string" ? c : "ok",
    };
    continue;
  }
  const tensors: Record<string, number> = {};
  for (const k of Object.keys(c.tensors)) tensors[k] = relDiff(g.tensors[k] ?? [], c.tensors[k]);
  report[name] = { webgpuMs: Math.round(g.ms), cpuMs: Math.round(c.ms), maxRelDiff: tensors };
}
console.log(
  JSON.stringify(
    { adapter: gpu.description, hardware: gpu.hardware, tfjs: tf.version.tfjs, report },
    null,
    1,
  ),
);
