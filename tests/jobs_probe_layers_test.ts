/**
 * Sharded probe feature extraction (issue 18): each shard computes every
 * probed layer's features of its slice of the training draw and of the
 * held-out examples and writes them as its state file's binary part; N in
 * {1, 2, 3, 7} merged and probed give exactly the single run's result (the
 * probes are fit on bitwise the same features); a shard holds only its
 * slice; a merge refuses another draw, naming the parameter.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  PROBE_LAYERS_STATE,
  probeLayers,
  probeLayersJob,
  type ProbeLayersState,
} from "../plugins/train/transfer/probe_layers.ts";
import { layerFeatures } from "../plugins/train/transfer/features.ts";
import { subset } from "../core/data/source.ts";
import { datasetFor } from "../core/data/dataset_for.ts";
import { drawPerClass } from "../plugins/train/transfer/splits.ts";
import { builtinNet, contents, mergeOn, runOn, runShard, sharded } from "./_jobs.ts";

await initBackend("cpu", { quiet: true });

const RAW = { perClass: 3, valCount: 20, steps: 12, layers: "conv1,pool1,conv2,fc1" };

Deno.test("sharded probe-layers: 1, 2, 3 and 7 shards of features merged and probed equal the single run exactly", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-probe-" });
  const before = tf.memory().numTensors;
  try {
    const one = await runOn(net, probeLayers, RAW);
    const want = await contents(one);
    assert.equal(one.figures.trainExamples, 30);
    assert.equal(one.figures.valExamples, 20);
    one.dispose();
    for (const n of [1, 2, 3, 7]) {
      const { result, states } = await sharded(net, probeLayersJob, RAW, n, tmp);
      assert.deepEqual(await contents(result), want, `${n} shards`);
      result.dispose();
      // Each shard wrote its slice's features and nothing more: 50 examples in all.
      const rows = states.map((s) => {
        const v = s.value as ProbeLayersState;
        return [v.train, v.val].reduce(
          (a, q) => a + q.segments.reduce((b, g) => b + g.count, 0),
          0,
        );
      });
      assert.equal(rows.reduce((a, b) => a + b, 0), 50);
      assert.ok(Math.max(...rows) <= Math.ceil(30 / n) + Math.ceil(20 / n), `${rows}`);
      // The features are the state file's binary part: float32, every layer of every row.
      const v = states[0].value as ProbeLayersState;
      const per = v.shapes.reduce((a, [h, w, c]) => a + h * w * c, 0);
      const bin = await Deno.stat(states[0].path.replace(/\.json$/, ".bin"));
      assert.equal(bin.size, 4 * per * rows[0]);
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("merged probe features equal layerFeatures of the whole draw bitwise, merge associatively, and a rerun writes the same bytes", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-probe-" });
  try {
    const { result, states } = await sharded(net, probeLayersJob, RAW, 3, tmp);
    result.dispose();
    const [a, b, c] = states.map((s) => s.value as ProbeLayersState);
    const m = PROBE_LAYERS_STATE.merge;
    assert.deepEqual(m(a, m(b, c)), m(m(a, b), c));
    const all = m(m(c, a), b);
    // A shard run again (as after a kill) writes the same state bytes, features included.
    const path = states[2].path;
    const first = [await Deno.readFile(path), await Deno.readFile(path.replace(/json$/, "bin"))];
    await runShard(net, probeLayersJob, RAW, 2, 3, tmp);
    assert.deepEqual(
      [await Deno.readFile(path), await Deno.readFile(path.replace(/json$/, "bin"))],
      first,
    );
    // The naive reference: the single process's features of the whole draw.
    const data = await datasetFor(net, "mnist");
    const split = drawPerClass(data, RAW.perClass, 0);
    const feats = await layerFeatures(net, subset(data, split.train), {
      layers: RAW.layers.split(","),
    });
    for (const [k, layer] of all.layers.entries()) {
      const want = await feats.get(layer)!.batch(split.train.map((_, i) => i));
      const got = all.train.segments.flatMap((g) => Array.from(g.features[k]));
      assert.deepEqual(got, Array.from(await want.x.data()), layer);
      tf.dispose([want.x, want.y]);
    }
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a probe-layers merge refuses features of another draw or other layers", async () => {
  const net = await builtinNet("mnist");
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-probe-" });
  try {
    const raw = { ...RAW, valCount: 6 };
    const base = (await sharded(net, probeLayersJob, raw, 2, `${tmp}/a`)).states;
    const other = (await sharded(net, probeLayersJob, { ...raw, perClass: 2 }, 2, `${tmp}/b`))
      .states;
    await assert.rejects(
      () => mergeOn(net, probeLayersJob, [base[0], other[1]], raw),
      // The draw's size is part of the data's identity: 30 drawn against 20.
      /different data: data\.name is "mnist held-out: 30 drawn for training, 6 held out" in the first and "mnist held-out: 20 drawn/,
    );
    const layers = (await sharded(net, probeLayersJob, { ...raw, layers: "fc1" }, 2, `${tmp}/c`))
      .states;
    await assert.rejects(
      () => mergeOn(net, probeLayersJob, [base[0], layers[1]], raw),
      /different parameters \(layers\)/,
    );
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});
