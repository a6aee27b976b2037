/**
 * The experiments' cells as shards (issue 18): `stack-experiment` (block
 * design x seed) and `transfer` (target x size x seed) cut their cells by
 * index; shard i trains its cells and writes their accuracies, and the merge
 * assembles the single run's table exactly (seeds come from the cell's
 * global index), the transfer table's fine-tuned model included. Tiny
 * settings: a few steps on a few images.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  stackExperiment,
  stackExperimentJob,
  type StackExperimentState,
} from "../plugins/design/stack_experiment.ts";
import {
  TRANSFER_STATE,
  transferJob,
  type TransferState,
  transferTable,
} from "../plugins/train/transfer/transfer_table.ts";
import type { Result } from "../core/result.ts";
import { builtinNet, contents, mergeOn, runOn, sharded } from "./_jobs.ts";

await initBackend("wasm", { quiet: true });

/** A result's contents without the columns that hold timings (not reproducible). */
async function withoutTimings(r: Result, column: string): Promise<unknown> {
  const c = await contents(r) as { json: { tables: { columns: string[]; rows: unknown[][] }[] } };
  for (const t of c.json.tables) {
    const k = t.columns.indexOf(column);
    if (k >= 0) t.rows = t.rows.map((row) => row.filter((_, j) => j !== k));
  }
  return c;
}

Deno.test("sharded stack-experiment: 1, 2, 3 and 7 shards of its 8 cells merged give the single run's table", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-cells-" });
  const before = tf.memory().numTensors;
  try {
    const raw = { channels: 2, trainCount: 32, testCount: 40, epochs: 1, seeds: 2, batchSize: 16 };
    const one = await runOn(net, stackExperiment, raw);
    const want = await withoutTimings(one, "ms / image");
    // Two seeds give two different accuracies somewhere: the seed reaches the training.
    const perSeed = one.tables[0].rows.map((row) => String(row[3]));
    assert.ok(perSeed.some((s) => new Set(s.split(", ")).size === 2), perSeed.join(" | "));
    one.dispose();
    for (const n of [1, 2, 3, 7]) {
      const { result, states } = await sharded(net, stackExperimentJob, raw, n, tmp);
      assert.deepEqual(await withoutTimings(result, "ms / image"), want, `${n} shards`);
      result.dispose();
      const cells = states.map((s) => (s.value as StackExperimentState).cells.map((c) => c.cell));
      assert.deepEqual(cells.flat(), [0, 1, 2, 3, 4, 5, 6, 7], "each cell once, by index");
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

const TRANSFER = {
  perClass: [2, 3],
  steps: [2, 2],
  seeds: 2,
  targets: "similar",
  strategies: "scratch,linear-top,stages,fine-tune-few",
  testCount: 20,
  baseCount: 40,
  baseEpochs: 1,
  probeSteps: 4,
  dims: 16,
  l2: [0.01],
  cache: "none",
};

Deno.test("sharded transfer: 2 and 4 shards of its cells merged give the single run's table and fine-tuned model", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-cells-" });
  const before = tf.memory().numTensors;
  const weightsOf = (r: Result) => r.model!.model.getWeights().map((w) => Array.from(w.dataSync()));
  try {
    const one = await runOn(net, transferTable, TRANSFER);
    const want = await contents(one);
    const wantModel = weightsOf(one);
    assert.equal(one.figures.cells, 2);
    one.dispose();
    for (const n of [2, 4]) {
      const { result, states } = await sharded(net, transferJob, TRANSFER, n, tmp);
      assert.deepEqual(await contents(result), want, `${n} shards`);
      // The model riding on the result is the last cell's fine-tuned one, weight for weight.
      assert.deepEqual(weightsOf(result), wantModel, `${n} shards: model`);
      assert.equal(result.model!.sidecar.name, "transfer-fine-tuned");
      result.dispose();
      const values = states.map((s) => s.value as TransferState);
      assert.deepEqual(values.flatMap((v) => v.cells.map((c) => c.cell)), [0, 1, 2, 3]);
      // Only the shard holding the last cell carries a model.
      assert.deepEqual(values.map((v) => v.model !== undefined), values.map((_, i) => i === n - 1));
      const m = TRANSFER_STATE.merge;
      if (n === 4) {
        const [a, b, c, d] = values;
        assert.deepEqual(m(a, m(b, m(c, d))), m(m(m(a, b), c), d), "associative");
      }
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a transfer merge refuses cells of other parameters", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-cells-" });
  try {
    const raw = { ...TRANSFER, perClass: [2], steps: [1], strategies: "linear-top" };
    const a = (await sharded(net, transferJob, raw, 2, `${tmp}/a`)).states;
    a.forEach((s) => (s.value as TransferState).model === undefined);
    const b = (await sharded(net, transferJob, { ...raw, probeSteps: 3 }, 2, `${tmp}/b`)).states;
    await assert.rejects(
      () => mergeOn(net, transferJob, [a[0], b[1]], raw),
      /different parameters \(probeSteps\): params\.probeSteps is 4 in the first and 3/,
    );
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});
