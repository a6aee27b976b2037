/**
 * Deno.bench rows per backend for the workloads of `workloads.ts`.
 *
 *   deno bench -A bench/convnet_bench.ts                      wasm (convlens kernels), cpu
 *   CONVLENS_STOCK_WASM=1 deno bench -A bench/convnet_bench.ts  wasm with stock tfjs kernels
 *   CONVLENS_BENCH_WEBGPU=1 deno bench -A bench/convnet_bench.ts  adds webgpu (slow on llvmpipe)
 *
 * The pure-JS cpu backend takes seconds per row; it runs few iterations.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend } from "../core/backend.ts";
import { buildWorkloads, WORKLOAD_NAMES } from "./workloads.ts";

const stock = Deno.env.get("CONVLENS_STOCK_WASM") === "1";
const backends = ["wasm", "cpu"];
if (Deno.env.get("CONVLENS_BENCH_WEBGPU") === "1") {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  backends.push("webgpu");
}

for (const backend of backends) {
  await initBackend(backend, { quiet: true });
  const { run } = buildWorkloads();
  const label = backend === "wasm" ? `wasm${stock ? " (stock tfjs)" : ""}` : backend;
  for (const name of WORKLOAD_NAMES) {
    const heavy = backend !== "wasm" && name !== "forward b1" && name !== "input grad b1";
    Deno.bench({
      name: `${label}: ${name}`,
      group: name,
      baseline: backend === "wasm",
      n: heavy ? 2 : undefined,
      warmup: heavy ? 1 : undefined,
      // Stock wasm has no Conv2DBackpropFilter, so it cannot train.
      ignore: stock && backend === "wasm" && name === "train step b64",
      async fn(b) {
        if (tf.getBackend() !== backend) await tf.setBackend(backend);
        b.start();
        run[name]();
        b.end();
      },
    });
  }
}
