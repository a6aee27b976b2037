/**
 * Large jobs on one machine (issue 18): `top-patches` over Fashion-MNIST
 * training images with `--workers K`, timed from the command line as a user
 * runs it (model load, K shard processes, merge, crops and projections), with
 * the peak resident memory of the whole process tree (the parent and its
 * workers, sampled every 50 ms from /proc) and of its largest process.
 *
 *   deno run -A bench/jobs_workers.ts                          1 and 2 workers, 60,000 images
 *   deno run -A bench/jobs_workers.ts --counts 3750,15000,60000 --workers 1   memory vs data size
 *   deno run -A bench/jobs_workers.ts --folder 20000 --counts 20000   an ImageFolder of PNGs
 *
 * `--folder N` first writes the first N Fashion-MNIST training images as PNGs
 * into a temporary ImageFolder (one subfolder per class; removed afterwards),
 * which top-patches streams through the ImageFolder source, decoding each PNG
 * when its batch is read.
 *
 * Not a `deno bench` file: each row is one run of the CLI (minutes), not a loop.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runSampled } from "./_rss.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    counts: { type: "string", default: "60000" },
    workers: { type: "string", default: "1,2" },
    maxChannels: { type: "string", default: "16" },
    folder: { type: "string" },
  },
});

/** Writes the first `n` Fashion-MNIST training images as an ImageFolder; returns its path. */
async function makeFolder(n: number): Promise<string> {
  const { fashionMnist, FASHION_CLASSES } = await import("../core/data/fashion_mnist.ts");
  const { encodePng } = await import("../core/images/codecs.ts");
  const { initBackend } = await import("../backends/mod.ts");
  await initBackend("cpu", { quiet: true });
  const train = await fashionMnist("train");
  const dir = await Deno.makeTempDir({ prefix: "convlens-bench-folder-" });
  const names = FASHION_CLASSES.map((c) => c.replace(/\W+/g, "_"));
  for (const c of names) await Deno.mkdir(`${dir}/${c}`);
  for (let start = 0; start < n; start += 500) {
    const idx = Array.from({ length: Math.min(500, n - start) }, (_, i) => start + i);
    const { x, y } = await train.batch(idx);
    const px = await x.data(), labels = await y.data();
    x.dispose();
    y.dispose();
    await Promise.all(idx.map(async (i, j) => {
      const data = new Uint8ClampedArray(28 * 28 * 4);
      for (let k = 0; k < 28 * 28; k++) {
        const v = Math.round(px[j * 784 + k] * 255);
        data.set([v, v, v, 255], k * 4);
      }
      const png = await encodePng({ width: 28, height: 28, data });
      await Deno.writeFile(`${dir}/${names[labels[j]]}/${String(i).padStart(5, "0")}.png`, png);
    }));
  }
  return dir;
}

const folder = values.folder ? await makeFolder(Number(values.folder)) : undefined;
if (folder) console.log(`ImageFolder of ${values.folder} PNGs at ${folder}`);
const counts = values.counts.split(",").map(Number);
const workers = values.workers.split(",").map(Number);
const CLI = decodeURIComponent(new URL("../scripts/cli.ts", import.meta.url).pathname);

console.log(`load before: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(
  "| images | workers | wall s | images/s | images/s per worker | peak RSS tree MB | largest process MB |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (const count of counts) {
  for (const k of workers) {
    const out = await Deno.makeTempDir({ prefix: "convlens-bench-jobs-" });
    const run = await runSampled(
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          CLI,
          "top-patches",
          "--model",
          "fashion",
          "--data",
          folder ?? "fashion-train",
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
      }),
    );
    const s = run.seconds, peak = run;
    await Deno.remove(out, { recursive: true });
    if (!run.success) throw new Error(`run of ${count} images, ${k} workers failed`);
    console.log(
      `| ${count} | ${k} | ${s.toFixed(1)} | ${(count / s).toFixed(0)} | ${
        (count / s / k).toFixed(0)
      } | ${(peak.total / 1024).toFixed(0)} | ${(peak.largest / 1024).toFixed(0)} |`,
    );
  }
}
console.log(`load after: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
if (folder) await Deno.remove(folder, { recursive: true });
