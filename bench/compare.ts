/**
 * Side-by-side timings: tfjs (each configuration in its own process, in-process
 * timing, warmup then median) against PyTorch on the same workloads, as a
 * markdown table with ratios tfjs / PyTorch.
 *
 * Usage: deno run -A bench/compare.ts [--repeats 5] [--with-cpu] [--cpu-repeats 1]
 *   [--cpu-only "forward b1,saliency b1"] [--backend webgpu] [--out file.md]
 *
 * The pure-JS cpu backend takes seconds per heavy row: `--cpu-repeats` and
 * `--cpu-only` bound its run (rows it skips show as "-").
 *
 * @module
 */
import { parseArgs } from "node:util";
import { WORKLOAD_NAMES } from "./workloads.ts";
import { oneDnn } from "../backends/onednn.ts";
import { runJson as runSide } from "./_side.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "5" },
    "with-cpu": { type: "boolean", default: false },
    "cpu-repeats": { type: "string" },
    "cpu-only": { type: "string" },
    backend: { type: "string" },
    out: { type: "string" },
  },
});

interface Side {
  label: string;
  result: Record<string, number | string>;
}

const runJson = (cmd: string, args: string[], env: Record<string, string>) =>
  runSide<{ result: Record<string, number | string> }>(cmd, args, env);

const repeats = values.repeats;
const tfjs = (backend: string, env: Record<string, string> = {}, extra: string[] = []) =>
  runJson(Deno.execPath(), [
    "run",
    "-A",
    new URL("./tfjs_side.ts", import.meta.url).pathname,
    "--backend",
    backend,
    "--repeats",
    repeats,
    ...extra,
  ], env);

const dnnl = oneDnn();
const configs: [string, () => ReturnType<typeof tfjs>][] = values.backend
  ? [[`tfjs ${values.backend}`, () => tfjs(values.backend!)]]
  : [
    [
      typeof dnnl === "string"
        ? "convlens wasm (oneDNN unavailable)"
        : `convlens wasm + oneDNN (${dnnl.threads} threads)`,
      () => tfjs("wasm"),
    ],
    ["convlens wasm, no oneDNN", () => tfjs("wasm", { CONVLENS_NATIVE: "0" })],
    ["tfjs wasm (stock 4.22)", () => tfjs("wasm", { CONVLENS_STOCK_WASM: "1" })],
  ];
if (values["with-cpu"]) {
  const extra = [
    ...(values["cpu-repeats"] ? ["--repeats", values["cpu-repeats"]] : []),
    ...(values["cpu-only"] ? ["--only", values["cpu-only"]] : []),
  ];
  configs.push(["tfjs cpu (pure JS)", () => tfjs("cpu", {}, extra)]);
}

const torch = await runJson("/usr/bin/python3", [
  new URL("./compare_torch.py", import.meta.url).pathname,
  "--repeats",
  repeats,
], { MALLOC_MMAP_MAX_: "0", MALLOC_TRIM_THRESHOLD_: "68719476736" });
const sides: Side[] = [];
for (const [label, run] of configs) {
  try {
    sides.push({ label, result: (await run()).result });
  } catch (err) {
    sides.push({ label, result: { error: (err as Error).message.slice(0, 200) } });
  }
}

const fmt = (v: number | string | undefined) =>
  typeof v === "number" ? v.toFixed(1) : v === undefined ? "-" : "fails";
const ratio = (v: number | string | undefined, ref: number | string) =>
  typeof v === "number" && typeof ref === "number" ? `${(v / ref).toFixed(2)}x` : "-";
const head = ["workload", "PyTorch ms", ...sides.flatMap((s) => [`${s.label} ms`, "ratio"])];
const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
for (const name of WORKLOAD_NAMES) {
  const ref = torch.result[name];
  const cells = sides.flatMap((s) => [fmt(s.result[name]), ratio(s.result[name], ref)]);
  lines.push(`| ${name} | ${fmt(ref)} | ${cells.join(" | ")} |`);
}
const table = lines.join("\n");
console.log(table);
for (const s of sides) {
  for (const [k, v] of Object.entries(s.result)) {
    if (typeof v === "string") console.error(`${s.label}, ${k}: ${v}`);
  }
}
if (values.out) await Deno.writeTextFile(values.out, table + "\n");
