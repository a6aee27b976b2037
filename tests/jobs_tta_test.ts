/**
 * Sharded test-time augmentation (issue 18): N in {1, 2, 3, 7} shards of the
 * test images, each through its state file, merged, give exactly the single
 * run's result (integer counts, the disagreement list with its ties, the
 * per-view probabilities, PNGs); states merge associatively; a merge refuses
 * states of other parameters, models or data, naming the field.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import {
  tta,
  TTA_STATE,
  ttaJob,
  type TtaState,
} from "../plugins/train/marginalize/test_time_crops.ts";
import { builtinNet, contents, mergeOn, runOn, runShard, sharded } from "./_jobs.ts";

await initBackend("cpu", { quiet: true });

const RAW = { count: 21, scales: [1, 1.15], pad: 2, flips: false, show: 5, batchSize: 40 };

Deno.test("sharded tta: 1, 2, 3 and 7 shards merged equal the single run exactly", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-tta-" });
  const before = tf.memory().numTensors;
  try {
    const one = await runOn(net, tta, RAW);
    const want = await contents(one);
    // A real measurement: 10 views, counts out of 21 labelled digits.
    assert.equal(one.figures.views, 10);
    assert.equal(one.figures.count, 21);
    const right = 21 * (one.figures.accuracyTta as number);
    assert.ok(Math.abs(right - Math.round(right)) < 1e-9, "a count of right answers");
    one.dispose();
    for (const n of [1, 2, 3, 7]) {
      // Shards may run with other batch sizes: the counts do not depend on them.
      const { result, states } = await sharded(net, ttaJob, { ...RAW, batchSize: 20 + n }, n, tmp);
      assert.deepEqual(await contents(result), want, `${n} shards`);
      result.dispose();
      // Each shard counted only its own images.
      const counts = states.map((s) => (s.value as TtaState).count);
      assert.equal(counts.reduce((a, b) => a + b, 0), 21);
      if (n === 7) assert.deepEqual(counts, [3, 3, 3, 3, 3, 3, 3]);
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tta states merge associatively and order-free, counts as integer sums; a rerun writes the same bytes", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-tta-" });
  try {
    const { result, states } = await sharded(net, ttaJob, { ...RAW, show: 3 }, 3, tmp);
    result.dispose();
    const [a, b, c] = states.map((s) => s.value as TtaState);
    const m = TTA_STATE.merge;
    assert.deepEqual(m(a, m(b, c)), m(m(a, b), c));
    assert.deepEqual(m(m(c, a), b), m(m(a, b), c), "order-free");
    const all = m(m(a, b), c);
    // A shard run again (as after a kill) writes the same state bytes.
    const path = states[1].path;
    const first = [await Deno.readFile(path), await Deno.readFile(path.replace(/json$/, "bin"))];
    await runShard(net, ttaJob, { ...RAW, show: 3 }, 1, 3, tmp);
    assert.deepEqual(
      [await Deno.readFile(path), await Deno.readFile(path.replace(/json$/, "bin"))],
      first,
    );
    assert.equal(all.labelled, a.labelled + b.labelled + c.labelled);
    assert.equal(all.disagreement.length, 3);
    // The kept list is ordered by votes, then by the lower image index.
    for (let i = 1; i < all.disagreement.length; i++) {
      const [p, q] = [all.disagreement[i - 1], all.disagreement[i]];
      assert.ok(p.votes > q.votes || (p.votes === q.votes && p.image < q.image));
    }
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a tta merge refuses other parameters, models and data, naming the mismatch", async () => {
  const net = await builtinNet("mnist");
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1] }),
      tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: "zeros" }),
    ],
  });
  const other = Net.fromModel(model, { labels: net.labels });
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-tta-" });
  const before = tf.memory().numTensors;
  try {
    const raw = { ...RAW, count: 12 };
    const shardsOf = async (n: Net, r: Record<string, unknown>, dir: string) => {
      const { result, states } = await sharded(n, ttaJob, r, 2, `${tmp}/${dir}`);
      result.dispose();
      return states;
    };
    const base = await shardsOf(net, raw, "base");
    await assert.rejects(
      async () =>
        mergeOn(net, ttaJob, [base[0], (await shardsOf(net, { ...raw, pad: 1 }, "p"))[1]], raw),
      /different parameters \(pad\): params\.pad is 2 in the first and 1/,
    );
    await assert.rejects(
      async () => mergeOn(net, ttaJob, [base[0], (await shardsOf(other, raw, "m"))[1]], raw),
      /different models/,
    );
    await assert.rejects(() => mergeOn(other, ttaJob, base, raw), /different models/);
    await assert.rejects(
      async () =>
        mergeOn(net, ttaJob, [base[0], (await shardsOf(net, { ...raw, count: 10 }, "d"))[1]], raw),
      /different (data|parameters \(count\))/,
    );
    await assert.rejects(() => mergeOn(net, ttaJob, [base[0]], raw), /shard 1\/2 missing/);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    other.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});
