/**
 * The tfjs half of `compare.ts`: times every workload on one backend in this
 * process and prints one JSON object (milliseconds, or an error per workload).
 *
 * Usage: deno run -A bench/tfjs_side.ts --backend wasm [--repeats 5] [--only "forward b1"]
 * With CONVLENS_STOCK_WASM=1 the wasm backend keeps stock tfjs kernels.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../core/backend.ts";
import { buildWorkloads, medianMs, WORKLOAD_NAMES } from "./workloads.ts";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "wasm" },
    repeats: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    only: { type: "string" },
  },
});
const backend = await initBackend(values.backend, { quiet: true });
const { run, dispose } = buildWorkloads();
const result: Record<string, number | string> = {};
for (const name of WORKLOAD_NAMES) {
  if (values.only && !values.only.split(",").includes(name)) continue;
  try {
    result[name] = medianMs(run[name], Number(values.warmup), Number(values.repeats));
  } catch (err) {
    result[name] = `error: ${(err as Error).message.split("\n")[0]}`;
  }
}
dispose();
console.log(JSON.stringify({ backend, tensorsLeft: tf.memory().numTensors, result }));
