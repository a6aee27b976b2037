/**
 * Deno.bench rows per backend for the workloads of `workloads.ts`.
 *
 *   deno bench -A bench/convnet_bench.ts        wasm + oneDNN (the default), wasm alone, cpu
 *   CONVLENS_STOCK_WASM=1 deno bench -A bench/convnet_bench.ts  wasm with stock tfjs kernels
 *   CONVLENS_BENCH_WEBGPU=1 deno bench -A bench/convnet_bench.ts  adds webgpu (slow on llvmpipe)
 *
 * The pure-JS cpu backend takes seconds per row; it runs few iterations.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { nativeStatus, useNativeKernels } from "../backends/native_kernels.ts";
import { buildWorkloads, WORKLOAD_NAMES } from "./workloads.ts";

const stock = Deno.env.get("CONVLENS_STOCK_WASM") === "1";

interface Side {
  label: string;
  backend: string;
  native: boolean;
}

await initBackend("wasm", { quiet: true });
const sides: Side[] = [];
if (nativeStatus().kernels.length) {
  sides.push({ label: "wasm + oneDNN", backend: "wasm", native: true });
}
sides.push({ label: `wasm${stock ? " (stock tfjs)" : ""}`, backend: "wasm", native: false });
sides.push({ label: "cpu", backend: "cpu", native: false });
if (Deno.env.get("CONVLENS_BENCH_WEBGPU") === "1") {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  sides.push({ label: "webgpu", backend: "webgpu", native: false });
}

for (const side of sides) {
  await initBackend(side.backend, { quiet: true });
  const { run } = buildWorkloads();
  for (const name of WORKLOAD_NAMES) {
    const heavy = side.backend === "cpu" && name !== "forward b1" && name !== "input grad b1";
    Deno.bench({
      name: `${side.label}: ${name}`,
      group: name,
      baseline: side === sides[0],
      n: heavy ? 2 : undefined,
      warmup: heavy ? 1 : undefined,
      // Stock wasm has no Conv2DBackpropFilter, so it cannot train.
      ignore: stock && side.backend === "wasm" && name === "train step b64",
      async fn(b) {
        if (tf.getBackend() !== side.backend) await tf.setBackend(side.backend);
        useNativeKernels(side.native);
        b.start();
        run[name]();
        b.end();
      },
    });
  }
}
