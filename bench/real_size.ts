/**
 * Real-size speed, side by side: ResNet-50, VGG16 and MobileNetV2 at 224x224
 * on convlens (WASM + oneDNN, `real_size_side.ts`) and on PyTorch 1.13
 * (`real_size_torch.py`, threads = cores, the malloc settings of
 * `compare_torch.py`). Each row runs in a fresh process on each side, so its
 * peak RSS is its own. Prints a markdown table: median ms, ratio, peak RSS and
 * its ratio, and checks that both sides count the same parameters.
 *
 * Usage: deno run -A bench/real_size.ts [--arch resnet50,vgg16,mobilenet]
 *   [--rows "forward b1,input grad b1"] [--repeats 5] [--out file.md]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REAL_SIZE_ROWS } from "./real_size_side.ts";
import { runJson } from "./_side.ts";

const { values } = parseArgs({
  options: {
    arch: { type: "string", default: "resnet50,vgg16,mobilenet" },
    rows: { type: "string" },
    repeats: { type: "string", default: "5" },
    out: { type: "string" },
  },
});

interface Measure {
  ms: number;
  peakMB: number;
  params: number;
}

const run = (cmd: string, args: string[], env: Record<string, string>) =>
  runJson<Measure>(cmd, args, env);

const here = (f: string) => new URL(`./${f}`, import.meta.url).pathname;
const rows = values.rows ? values.rows.split(",").map((r) => r.trim()) : [...REAL_SIZE_ROWS];
const lines = [
  "| arch | row | PyTorch ms | convlens ms | ratio | PyTorch MB | convlens MB | RSS ratio | load |",
  "|---|---|---|---|---|---|---|---|---|",
];
for (const arch of values.arch.split(",")) {
  for (const row of rows) {
    const common = ["--arch", arch, "--row", row, "--repeats", values.repeats];
    // The 1-minute load average before the row: other processes slow both sides.
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
    const torch = await run("/usr/bin/python3", [here("real_size_torch.py"), ...common], {
      MALLOC_MMAP_MAX_: "0",
      MALLOC_TRIM_THRESHOLD_: "68719476736",
    });
    const lens = await run(
      Deno.execPath(),
      ["run", "-A", here("real_size_side.ts"), ...common],
      {},
    );
    if (torch.params !== lens.params) {
      throw new Error(
        `${arch}: PyTorch counts ${torch.params} parameters, convlens ${lens.params}`,
      );
    }
    const line = `| ${arch} | ${row} | ${torch.ms.toFixed(0)} | ${lens.ms.toFixed(0)} | ${
      (lens.ms / torch.ms).toFixed(2)
    }x | ${torch.peakMB.toFixed(0)} | ${lens.peakMB.toFixed(0)} | ${
      (lens.peakMB / torch.peakMB).toFixed(2)
    }x | ${load} |`;
    console.error(line);
    lines.push(line);
  }
}
const table = lines.join("\n") + "\n";
console.log(table);
if (values.out) Deno.writeTextFileSync(values.out, table);
