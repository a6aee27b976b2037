/**
 * Evaluation plugins at data-set scale (issue 18): peak resident memory of
 * `pointing-game` (or `deletion`, `sanity-check`, `tta`) from the command
 * line at 1x, 4x and 16x the images. The plugins read their images from the
 * source a batch at a time, so the peak should stay flat as the data grows;
 * wall time grows with it.
 *
 *   nice -n 5 deno run -A bench/jobs_eval_memory.ts                    pointing-game, canvas model
 *   nice -n 5 deno run -A bench/jobs_eval_memory.ts --plugin deletion --model mnist --counts 125,500,2000
 *   nice -n 5 deno run -A bench/jobs_eval_memory.ts --cli /tmp/old/scripts/cli.ts   another version
 *
 * Not a `deno bench` file: each row is one run of the CLI, not a loop.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runSampled } from "./_rss.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    plugin: { type: "string", default: "pointing-game" },
    model: { type: "string", default: "canvas" },
    counts: { type: "string", default: "125,500,2000" },
    methods: { type: "string", default: "saliency" },
    extra: { type: "string", default: "" },
    cli: { type: "string" },
  },
});

// `--cli` runs another checkout's CLI (e.g. a version that loaded every image first).
const CLI = values.cli ??
  decodeURIComponent(new URL("../scripts/cli.ts", import.meta.url).pathname);
const counts = values.counts.split(",").map(Number);
// Parameters that keep each image's work small: the bench is about memory.
const light: Record<string, string[]> = {
  "pointing-game": ["--methods", values.methods, "--show", "2"],
  deletion: ["--methods", values.methods, "--steps", "5"],
  "sanity-check": ["--methods", values.methods],
  tta: ["--scales", "1"],
};

console.log(`load before: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
console.log(`${values.plugin} on the ${values.model} model`);
console.log("| images | x | wall s | images/s | peak RSS MB |");
console.log("|---:|---:|---:|---:|---:|");
for (const count of counts) {
  const out = await Deno.makeTempDir({ prefix: "convlens-bench-eval-" });
  const r = await runSampled(
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        values.plugin,
        "--model",
        values.model,
        "--count",
        String(count),
        ...(light[values.plugin] ?? []),
        ...values.extra.split(" ").filter((s) => s !== ""),
        "--out",
        out,
        "--quiet",
      ],
      env: { OMP_WAIT_POLICY: "passive" },
      stdout: "null",
      stderr: "inherit",
    }),
  );
  await Deno.remove(out, { recursive: true });
  if (!r.success) throw new Error(`${values.plugin} on ${count} images failed`);
  console.log(
    `| ${count} | ${count / counts[0]} | ${r.seconds.toFixed(1)} | ${
      (count / r.seconds).toFixed(0)
    } | ${(r.total / 1024).toFixed(0)} |`,
  );
}
console.log(`load after: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
