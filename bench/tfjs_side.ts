/**
 * The tfjs half of `compare.ts`: times every workload on one backend in this
 * process and prints one JSON object (milliseconds, or an error per workload).
 *
 * Rows (see `WORKLOAD_NAMES` in `workloads.ts`): forward b1/b64, input grad b1/b16,
 * train step b64, saliency b1/b16 and guided backprop b1/b16 (convlens's
 * `gradient` on the MNIST-size net), class-model step b1 and deep-dream step b1.
 *
 * Usage: deno run -A bench/tfjs_side.ts --backend wasm [--repeats 5] [--warmup 1]
 *   [--only "forward b1,saliency b1"]
 * With CONVLENS_STOCK_WASM=1 the wasm backend keeps stock tfjs kernels.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
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
