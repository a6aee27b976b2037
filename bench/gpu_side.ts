/**
 * The workloads of `workloads.ts` (`buildTensorWorkloads`) timed on the WebGPU backend with asynchronous
 * reads (a synchronous read from a GPU stalls the queue and measures the stall).
 * Prints one JSON object: the adapter, and median milliseconds per workload.
 *
 * Usage: deno run -A bench/gpu_side.ts [--repeats 10] [--backend webgpu]
 * (compiled for a GPU machine by `bench/gpu_build.sh`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend, probeGpu } from "../backends/mod.ts";
import { buildTensorWorkloads, WORKLOAD_NAMES } from "./workloads.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "10" },
    backend: { type: "string", default: "webgpu" },
    only: { type: "string" },
  },
});
const gpu = await probeGpu();
const backend = await initBackend(values.backend, { quiet: true });
const { make: work, dispose } = buildTensorWorkloads();

const result: Record<string, number | string> = {};
for (const name of WORKLOAD_NAMES) {
  const fn = work[name];
  if (values.only && !values.only.split(",").includes(name)) continue;
  try {
    for (let i = 0; i < 2; i++) {
      const t = fn();
      await t.data();
      t.dispose();
    }
    const times: number[] = [];
    for (let i = 0; i < Number(values.repeats); i++) {
      const t0 = performance.now();
      const t = fn();
      await t.data();
      times.push(performance.now() - t0);
      t.dispose();
    }
    times.sort((a, b) => a - b);
    result[name] = times[times.length >> 1];
  } catch (err) {
    result[name] = `error: ${(err as Error).message.split("\n")[0]}`;
  }
}
dispose();
console.log(JSON.stringify({
  backend,
  adapter: gpu.description,
  hardware: gpu.hardware,
  tensorsLeft: tf.memory().numTensors,
  result,
}));
