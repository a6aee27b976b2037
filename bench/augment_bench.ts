/**
 * Images per second of the augmentation transforms on 64 float32 images of
 * 256x256x3, convlens (the backend `auto` picks; WASM here) side by side with
 * torchvision 0.14 (batched, where v1 transforms draw one set of parameters
 * for the whole batch, and per image) and OpenCV 4.6 (per image, float32 and
 * uint8), from bench/augment_torch.py. Each row: warmup, then the median of
 * `--repeats` runs. convlens rows draw per-image parameters (flips, crops,
 * jitter factors and affine maps differ per image) in one batched call.
 *
 * Usage: deno run -A bench/augment_bench.ts [--repeats 5] [--backend wasm] [--no-python] [--out file.md]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  augmentPipeline,
  colorJitter,
  horizontalFlip,
  lensDistortion,
  randomAffine,
  randomResizedCrop,
  type Transform,
} from "../plugins/train/augment/mod.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "5" },
    backend: { type: "string", default: "auto" },
    "no-python": { type: "boolean", default: false },
    out: { type: "string" },
  },
});
const repeats = Number(values.repeats);
await initBackend(values.backend as "auto");
const n = 64, size = 256;

const rows: Record<string, () => Transform[]> = {
  "flip": () => [horizontalFlip()],
  "random resized crop": () => [randomResizedCrop({ size: [224, 224] })],
  "colour jitter":
    () => [colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 })],
  "affine": () => [randomAffine({ rotate: 20, translate: 0.1, zoom: [0.9, 1.1], shear: 10 })],
  "lens distortion": () => [lensDistortion({ k1: [-0.3, 0.3], k2: [-0.1, 0.1] })],
  "pipeline": () => [
    horizontalFlip(),
    randomResizedCrop({ size: [224, 224] }),
    randomAffine({ rotate: 20, translate: 0.1, zoom: [0.9, 1.1], shear: 10 }),
    colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }),
  ],
};

const x = tf.randomUniform([n, size, size, 3], 0, 1, "float32", 1) as tf.Tensor4D;
const ours: Record<string, number> = {};
for (const [name, make] of Object.entries(rows)) {
  const p = augmentPipeline(make());
  const once = async (seed: number) => {
    const r = p.apply(x, seed);
    // WASM and CPU kernels have run when apply returns. On an asynchronous
    // backend (WebGPU) one value read back waits for the work, without timing
    // a copy of the whole batch, which the Python side does not make either.
    if (!["wasm", "cpu"].includes(tf.getBackend())) {
      const first = tf.tidy(() => r.images.reshape([-1]).slice(0, 1));
      await first.data();
      first.dispose();
    }
    r.images.dispose();
  };
  await once(0);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await once(i + 1);
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  ours[name] = n / times[Math.floor(times.length / 2)];
}
x.dispose();

type Side = Record<string, { imagesPerSecond: number }>;
let py: { threads: number; result: Record<string, Side> } | undefined;
if (!values["no-python"]) {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [new URL("./augment_torch.py", import.meta.url).pathname, "--repeats", String(repeats)],
    env: { MALLOC_MMAP_MAX_: "0", MALLOC_TRIM_THRESHOLD_: "68719476736" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success || !text.startsWith("{")) {
    throw new Error(`augment_torch.py failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  py = JSON.parse(text);
}

const sides = py ? Object.keys(py.result) : [];
const fmt = (
  v: number | undefined,
) => (v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const lines = [
  `Images per second, ${n} float32 images of ${size}x${size}x3 (median of ${repeats}); ` +
  `convlens on ${tf.getBackend()}${py ? `, torch/OpenCV threads ${py.threads}` : ""}`,
  "",
  `| transform | convlens | ${
    sides.join(" | ")
  } | convlens / torchvision per image | convlens / OpenCV float32 |`,
  `|---|---:|${sides.map(() => "---:").join("|")}|---:|---:|`,
  ...Object.keys(rows).map((r) => {
    const tv = py?.result["torchvision per image"]?.[r]?.imagesPerSecond;
    const cv = py?.result["opencv float32"]?.[r]?.imagesPerSecond;
    return `| ${r} | ${fmt(ours[r])} | ${
      sides.map((s) => fmt(py!.result[s][r]?.imagesPerSecond)).join(" | ")
    } | ` +
      `${tv ? (ours[r] / tv).toFixed(2) : "-"} | ${cv ? (ours[r] / cv).toFixed(2) : "-"} |`;
  }),
];
const table = lines.join("\n");
console.log(table);
if (values.out) await Deno.writeTextFile(values.out, table + "\n");
