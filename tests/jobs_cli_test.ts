/**
 * The new sharded jobs through the command line (issue 18): `--workers 2`
 * (two shard processes, then the merge) writes the same files as the single
 * run for `tta` and `probe-layers`, and the same figures for
 * `stack-experiment` (its table also holds timings); `merge` of `--shard`
 * runs by hand refuses an incomplete set.
 */
import assert from "node:assert/strict";
import { cli } from "./_cli.ts";

async function files(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out[e.name] = Array.from(await Deno.readFile(`${dir}/${e.name}`)).join(",");
  }
  return out;
}

const CASES: [string, string[]][] = [
  ["tta", ["--model", "mnist", "--count", "12", "--scales", "1", "--show", "3"]],
  ["probe-layers", ["--model", "mnist", "--perClass", "3", "--valCount", "12", "--steps", "8"]],
];

for (const [plugin, args] of CASES) {
  Deno.test(`${plugin} --workers 2 writes the single run's files`, async () => {
    const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-cli-" });
    try {
      const one = await cli([plugin, ...args, "--quiet", "--out", `${tmp}/one`]);
      assert.equal(one.code, 0, one.text);
      const two = await cli([plugin, ...args, "--workers", "2", "--quiet", "--out", `${tmp}/two`]);
      assert.equal(two.code, 0, two.text);
      const want = await files(`${tmp}/one`);
      assert.ok(Object.keys(want).length >= 1);
      assert.deepEqual(await files(`${tmp}/two`), want);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

Deno.test("stack-experiment by hand: --shard 0/2 and 1/2 merged give the single run's figures; one shard alone is refused", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-cli-" });
  try {
    const args = [
      "stack-experiment",
      ...["--channels", "2", "--trainCount", "16", "--testCount", "16", "--epochs", "1"],
      ...["--seeds", "1", "--quiet"],
    ];
    const one = await cli([...args, "--out", `${tmp}/one`]);
    assert.equal(one.code, 0, one.text);
    for (const i of [0, 1]) {
      const r = await cli([...args, "--shard", `${i}/2`, "--out", `${tmp}/s${i}`]);
      assert.equal(r.code, 0, r.text);
      assert.match(r.out, new RegExp(`stack-experiment-shard-${i}-of-2\\.state\\.json`));
    }
    const merged = await cli([
      "merge",
      "stack-experiment",
      ...["--in", `${tmp}/s0`, "--in", `${tmp}/s1`, "--quiet", "--out", `${tmp}/m`],
    ]);
    assert.equal(merged.code, 0, merged.text);
    const figures = (dir: string) =>
      Deno.readTextFile(`${dir}/stack-experiment.json`).then((t) => JSON.parse(t).figures);
    assert.deepEqual(await figures(`${tmp}/m`), await figures(`${tmp}/one`));
    const alone = await cli([
      "merge",
      "stack-experiment",
      "--in",
      `${tmp}/s1`,
      "--out",
      `${tmp}/x`,
    ]);
    assert.equal(alone.code, 2);
    assert.match(alone.err, /shard 0\/2 missing/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
