/**
 * Large jobs on one machine (issue 18): `top-patches` over Fashion-MNIST
 * training images with `--workers K`, timed from the command line as a user
 * runs it (model load, K shard processes, merge, crops and projections), with
 * the peak resident memory of the whole process tree (the parent and its
 * workers, sampled every 50 ms from /proc) and of its largest process.
 *
 *   deno run -A bench/jobs_workers.ts                          1 and 2 workers, 60,000 images
 *   deno run -A bench/jobs_workers.ts --counts 3750,15000,60000 --workers 1   memory vs data size
 *
 * Not a `deno bench` file: each row is one run of the CLI (minutes), not a loop.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    counts: { type: "string", default: "60000" },
    workers: { type: "string", default: "1,2" },
    maxChannels: { type: "string", default: "16" },
  },
});
const counts = values.counts.split(",").map(Number);
const workers = values.workers.split(",").map(Number);
const CLI = decodeURIComponent(new URL("../scripts/cli.ts", import.meta.url).pathname);

/** RSS in kB of every process whose ancestry reaches `root`, and the largest. */
function treeRss(root: number): { total: number; largest: number } {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e.name), Number(fields[1]));
      const status = Deno.readTextFileSync(`/proc/${e.name}/status`);
      rss.set(Number(e.name), Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // gone meanwhile
    }
  }
  let total = 0, largest = 0;
  for (const [pid, kb] of rss) {
    for (let p: number | undefined = pid; p && p > 1; p = parent.get(p)) {
      if (p === root) {
        total += kb;
        largest = Math.max(largest, kb);
        break;
      }
    }
  }
  return { total, largest };
}

console.log(`load before: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(
  "| images | workers | wall s | images/s | images/s per worker | peak RSS tree MB | largest process MB |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (const count of counts) {
  for (const k of workers) {
    const out = await Deno.makeTempDir({ prefix: "convlens-bench-jobs-" });
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        "top-patches",
        "--model",
        "fashion",
        "--data",
        "fashion-train",
        "--count",
        String(count),
        "--maxChannels",
        values.maxChannels,
        "--workers",
        String(k),
        "--out",
        out,
        "--quiet",
      ],
      env: { OMP_WAIT_POLICY: "passive" },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    let peak = { total: 0, largest: 0 };
    const timer = setInterval(() => {
      const r = treeRss(child.pid);
      peak = { total: Math.max(peak.total, r.total), largest: Math.max(peak.largest, r.largest) };
    }, 50);
    const status = await child.status;
    clearInterval(timer);
    const s = (performance.now() - t0) / 1000;
    await Deno.remove(out, { recursive: true });
    if (!status.success) throw new Error(`run of ${count} images, ${k} workers failed`);
    console.log(
      `| ${count} | ${k} | ${s.toFixed(1)} | ${(count / s).toFixed(0)} | ${
        (count / s / k).toFixed(0)
      } | ${(peak.total / 1024).toFixed(0)} | ${(peak.largest / 1024).toFixed(0)} |`,
    );
  }
}
console.log(`load after: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
