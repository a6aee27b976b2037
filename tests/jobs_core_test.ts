/**
 * The core of large jobs (issue 18): `--shard` parsing from the flag and the
 * job engines' variables, shard ranges that cover the data set, seeds that
 * depend on the global index only, top-k merges exact and associative on
 * random data full of ties, and state files whose binary part is checked.
 */
import assert from "node:assert/strict";
import { parseShard, shardRange } from "../core/jobs/shard_spec.ts";
import { exampleRandom } from "../core/jobs/seeds.ts";
import { addSums, mergeTopK } from "../core/jobs/mergeable.ts";
import { readState, writeState } from "../core/jobs/state_file.ts";
import { seededRandom } from "../core/random.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("--shard: i/N, auto/N under Kubernetes, auto under Slurm, and clear errors", () => {
  const none = env({});
  assert.deepEqual(parseShard("2/5", none), { index: 2, count: 5 });
  assert.deepEqual(parseShard("auto/4", env({ JOB_COMPLETION_INDEX: "3" })), {
    index: 3,
    count: 4,
  });
  const slurm = {
    SLURM_ARRAY_TASK_ID: "12",
    SLURM_ARRAY_TASK_MIN: "10",
    SLURM_ARRAY_TASK_COUNT: "3",
  };
  assert.deepEqual(parseShard("auto", env(slurm)), { index: 2, count: 3 });
  assert.deepEqual(parseShard("auto/3", env(slurm)), { index: 2, count: 3 });
  const bad: [string, Record<string, string>, RegExp][] = [
    [
      "auto",
      { JOB_COMPLETION_INDEX: "1" },
      /does not give the number of completions: write --shard auto\/N/,
    ],
    ["auto/4", {}, /JOB_COMPLETION_INDEX .* or SLURM_ARRAY_TASK_ID .* is not set/],
    ["auto/2", { JOB_COMPLETION_INDEX: "2" }, /Shard 2\/2 is invalid/],
    ["auto/4", slurm, /disagrees with SLURM_ARRAY_TASK_COUNT=3/],
    ["auto", { ...slurm, SLURM_ARRAY_TASK_STEP: "2" }, /step 2/],
    ["auto", { SLURM_ARRAY_TASK_ID: "0" }, /SLURM_ARRAY_TASK_COUNT is not/],
    ["auto", { JOB_COMPLETION_INDEX: "x" }, /JOB_COMPLETION_INDEX must be an integer/],
    ["3/3", {}, /Shard 3\/3 is invalid/],
    ["1/0", {}, /invalid/],
    ["1-3", {}, /--shard must be i\/N/],
  ];
  for (const [text, vars, want] of bad) {
    assert.throws(() => parseShard(text, env(vars)), want, text);
  }
});

Deno.test("shard ranges are contiguous, disjoint and cover every size, empty shards included", () => {
  for (const size of [0, 1, 5, 23, 60000]) {
    for (const n of [1, 2, 3, 7, 16]) {
      let next = 0;
      for (let i = 0; i < n; i++) {
        const [lo, hi] = shardRange(size, { index: i, count: n });
        assert.equal(lo, next);
        assert.ok(hi >= lo);
        next = hi;
      }
      assert.equal(next, size);
    }
  }
});

Deno.test("seeds depend on the seed, the stream and the global index only", () => {
  const a = exampleRandom(3, 1, 1000).next();
  assert.equal(exampleRandom(3, 1, 1000).next(), a);
  assert.notEqual(exampleRandom(3, 1, 1001).next(), a);
  assert.notEqual(exampleRandom(3, 2, 1000).next(), a);
  assert.notEqual(exampleRandom(4, 1, 1000).next(), a);
});

Deno.test("top-k merges of random lists full of ties equal the top-k of all, in any grouping", () => {
  const rng = seededRandom(7);
  const key = (h: { v: number; i: number }) => [-h.v, h.i];
  for (let trial = 0; trial < 50; trial++) {
    const all = Array.from({ length: 40 }, (_, i) => ({ v: rng.int(4), i }));
    const want = [...all].sort((x, y) => y.v - x.v || x.i - y.i).slice(0, 6);
    const parts = [all.slice(0, 9), all.slice(9, 10), all.slice(10, 33), all.slice(33)]
      .map((p) => mergeTopK([], rng.shuffle(p), 6, key));
    const [a, b, c, d] = parts;
    assert.deepEqual(mergeTopK(mergeTopK(a, b, 6, key), mergeTopK(c, d, 6, key), 6, key), want);
    assert.deepEqual(mergeTopK(d, mergeTopK(c, mergeTopK(b, a, 6, key), 6, key), 6, key), want);
  }
  assert.deepEqual(Array.from(addSums(Float64Array.of(1, 2), Float64Array.of(0.5, -2))), [1.5, 0]);
  assert.throws(() => addSums(new Float64Array(1), new Float64Array(2)), /1 and 2 entries/);
});

Deno.test("state files round-trip their arrays exactly and refuse a binary part of another run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convlens-state-" });
  try {
    const identity = {
      plugin: "x",
      params: { k: 1 },
      model: "sha256:0",
      data: { name: "d", size: 3 },
      seed: 0,
      shards: 2,
    };
    const arrays = {
      a: Float32Array.of(0.1, -3e-39, 7),
      b: Float64Array.of(Math.PI, 1e-300),
      c: Int32Array.of(-1, 2 ** 31 - 1),
    };
    const [json, bin] = await writeState(dir, { identity, covered: [1], settings: {} }, {
      json: { n: 1 / 3 },
      arrays,
    });
    assert.match(json, /x-shard-1-of-2\.state\.json$/);
    const back = await readState(json);
    assert.deepEqual(back.payload.arrays, arrays);
    assert.equal((back.payload.json as { n: number }).n, 1 / 3);
    const bytes = await Deno.readFile(bin);
    bytes[0] ^= 1;
    await Deno.writeFile(bin, bytes);
    await assert.rejects(() => readState(json), /does not match/);
    await Deno.remove(bin);
    await assert.rejects(() => readState(json), /needs its binary part/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
