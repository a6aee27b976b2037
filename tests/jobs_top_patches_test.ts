/**
 * Sharded top-patches (issue 18): N in {1, 2, 3, 7} shards, each written to and
 * read back from its state file, merged, give exactly the single run's result
 * (top-k lists with ties, crops, projections, figure, tables); merging is
 * associative; a rerun writes the same state bytes; merges of other models,
 * parameters or data, and incomplete or repeated shard sets, are refused.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import type { Context } from "../core/plugin.ts";
import { checkParams } from "../core/plugin.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { writePng } from "../core/images/codecs.ts";
import { datasetFor } from "../core/data/dataset_for.ts";
import type { Result } from "../core/result.ts";
import { mergePlugin, shardPlugin } from "../core/jobs/sharded_job.ts";
import { readState, type ShardState, writeState } from "../core/jobs/state_file.ts";
import {
  TOP_PATCHES_STATE,
  topPatches,
  topPatchesJob,
  type TopPatchesState,
} from "../plugins/inspect/top_patches.ts";
import type { AnyShardedJob } from "../core/jobs/sharded_job.ts";
import { type AnyPlugin, Registry } from "../core/plugin.ts";
import { runPlugin } from "../core/runner.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { deletion, deletionJob } from "../plugins/attribute/eval/deletion.ts";
import { pointingGame, pointingGameJob } from "../plugins/attribute/eval/pointing_game.ts";
import { sanityCheck, sanityCheckJob } from "../plugins/attribute/eval/sanity_check.ts";

await initBackend("cpu", { quiet: true });

/** A plugin context for a Net without a Lens. */
function context(net: Net, seed = 0): Context {
  const { height, width, channels } = net.input;
  const images = imagesFromPixels(net, tf.zeros([1, height, width, channels]) as tf.Tensor4D);
  return {
    net,
    images,
    rng: seededRandom(seed),
    seed,
    progress: () => {},
    warn: () => {},
    run: () => Promise.reject(new Error("not in tests")),
    runOn: () => Promise.reject(new Error("not in tests")),
    data: () => datasetFor(net, height === 28 && width === 28 ? "mnist" : undefined),
  };
}

function freeContext(ctx: Context): void {
  tf.dispose([ctx.images.x, ctx.images.pixels]);
}

const REGISTRY = new Registry(builtinPlugins);

/** Runs a plugin as the Lens does (a registry for nested runs; 28x28 nets read MNIST). */
async function runOn(net: Net, plugin: AnyPlugin, raw: Record<string, unknown>): Promise<Result> {
  const { height, width, channels } = net.input;
  const images = imagesFromPixels(net, tf.zeros([1, height, width, channels]) as tf.Tensor4D);
  try {
    return await runPlugin(net, images, plugin, raw, {
      registry: REGISTRY,
      data: height === 28 && width === 28 ? "mnist" : undefined,
    });
  } finally {
    tf.dispose([images.x, images.pixels]);
  }
}

/** 8x8 gray, a linear 3x3 conv "c1" (top-left pixel, centre, window sum), pool, dense. */
function handNet(scale = 1): Net {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, name: "c1" }),
      tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }),
      tf.layers.flatten({ name: "f" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "d" }),
    ],
  });
  const k = new Float32Array(9 * 3);
  k[0 * 3 + 0] = scale;
  k[4 * 3 + 1] = scale;
  for (let i = 0; i < 9; i++) k[i * 3 + 2] = scale;
  const conv = model.getLayer("c1");
  const weights = [tf.tensor4d(k, [3, 3, 1, 3]), tf.zeros([3])];
  conv.setWeights(weights);
  tf.dispose(weights);
  return Net.fromModel(model);
}

/**
 * 23 images of one bright spot each, with only three brightness levels: every
 * channel's top-k is full of ties, which only the global image index breaks.
 */
async function tieFolder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  for (let i = 0; i < 23; i++) {
    const px = new Float32Array(64);
    const v = [200, 200, 120][i % 3];
    px[(1 + (i * 5) % 6) * 8 + 1 + (i * 3) % 6] = v / 255;
    const t = tf.tensor3d(px, [8, 8, 1]);
    await writePng(`${dir}/img${String(i).padStart(2, "0")}.png`, t);
    t.dispose();
  }
  return dir;
}

/** Runs the N shards, each through its state file, and merges them. */
async function sharded(
  net: Net,
  job: AnyShardedJob,
  raw: Record<string, unknown>,
  n: number,
  dir: string,
): Promise<{ result: Result; states: ShardState<unknown>[] }> {
  const states: ShardState<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    {
      let got: ShardState<unknown> | undefined;
      const plugin = shardPlugin(job, { index: i, count: n }, (s) => (got = s));
      (await runOn(net, plugin, raw)).dispose();
      const shardDir = `${dir}/shard${i}-of-${n}`;
      await Deno.mkdir(shardDir, { recursive: true });
      const [path] = await writeState(shardDir, got!, job.state.encode(got!.value));
      const back = await readState(path);
      states.push({ ...back, value: job.state.decode(back.payload) });
    }
  }
  return { result: await runOn(net, mergePlugin(job, states), raw), states };
}

async function single(net: Net, raw: Record<string, unknown>): Promise<Result> {
  const ctx = context(net);
  try {
    return await topPatches.run(ctx, checkParams(topPatches, net, raw));
  } finally {
    freeContext(ctx);
  }
}

/** Everything a result holds, tensors as flat arrays, images as bytes. */
async function contents(r: Result): Promise<unknown> {
  const tensors: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(r.tensors)) {
    tensors[k] = [t.shape, Array.from(await t.data())];
  }
  return {
    json: JSON.parse(JSON.stringify(r.toJSON())),
    tensors,
    images: r.images.map((i) => [i.name, Array.from(i.png)]),
  };
}

Deno.test("sharded top-patches: 1, 2, 3 and 7 shards merged equal the single run exactly, ties included", async () => {
  const net = handNet();
  const data = await tieFolder();
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  const before = tf.memory().numTensors;
  try {
    const raw = { data, layer: "c1", k: 5, channels: [0, 1, 2], batchSize: 4 };
    const one = await single(net, raw);
    const want = await contents(one);
    // Ties: channel 0 (a window's top-left pixel) sees the spots at rows and
    // columns 1..5; of those, images 0, 3, 4, 6, 9, 10, ... share the top value
    // 200/255 and the kept five are the lowest of them.
    const positions = await one.tensors.positions.array() as number[][][];
    assert.deepEqual(positions[0].map((p) => p[0]), [0, 3, 4, 6, 9]);
    one.dispose();
    for (const n of [1, 2, 3, 7]) {
      // Shards may run with other batch sizes: the result does not depend on them.
      const { result } = await sharded(net, topPatchesJob, { ...raw, batchSize: n + 1 }, n, tmp);
      const got = await contents(result);
      result.dispose();
      assert.deepEqual(got, want, `${n} shards`);
    }
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    await Deno.remove(data, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sharded top-patches on the MNIST model's held-out digits equals the single run, projections included", async () => {
  const { loadNet } = await import("../core/load.ts");
  const net = await loadNet(
    decodeURIComponent(new URL("../models/mnist/", import.meta.url).pathname),
  );
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    const raw = { count: 40, k: 4, maxChannels: 3 };
    const one = await single(net, raw);
    const want = await contents(one);
    one.dispose();
    for (const n of [3, 7]) {
      const { result } = await sharded(net, topPatchesJob, raw, n, tmp);
      assert.deepEqual(await contents(result), want, `${n} shards`);
      result.dispose();
    }
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("top-patches states merge associatively, and a rerun writes the same state bytes", async () => {
  const net = handNet();
  const data = await tieFolder();
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    const raw = { data, layer: "c1", k: 4, channels: [0, 2] };
    const { states, result } = await sharded(net, topPatchesJob, raw, 3, tmp);
    result.dispose();
    const [a, b, c] = states.map((s) => s.value as TopPatchesState);
    const m = TOP_PATCHES_STATE.merge;
    assert.deepEqual(m(a, m(b, c)), m(m(a, b), c));
    assert.deepEqual(m(m(c, a), b), m(m(a, b), c), "order-free");
    // A shard killed mid-write leaves only a temporary file; the rerun writes
    // the same bytes as the first run did.
    const first = await Deno.readFile(`${tmp}/shard1-of-3/top-patches-shard-1-of-3.state.json`);
    await Deno.writeTextFile(`${tmp}/shard1-of-3/top-patches-shard-1-of-3.state.json.tmp-1`, "{");
    const again = await sharded(net, topPatchesJob, raw, 3, tmp);
    again.result.dispose();
    const second = await Deno.readFile(`${tmp}/shard1-of-3/top-patches-shard-1-of-3.state.json`);
    assert.deepEqual(second, first);
  } finally {
    net.dispose();
    await Deno.remove(data, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a top-patches merge refuses other models, parameters, data, and missing or repeated shards", async () => {
  const net = handNet();
  const other = handNet(2);
  const data = await tieFolder();
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  const before = tf.memory().numTensors;
  try {
    const raw = { data, layer: "c1", k: 4, channels: [0, 2] };
    const shardsOf = async (n: Net, r: Record<string, unknown>, count = 2) => {
      const { result, states } = await sharded(n, topPatchesJob, r, count, `${tmp}/${count}`);
      result.dispose();
      return states;
    };
    const base = await shardsOf(net, raw);
    const mergeOn = async (n: Net, states: ShardState<unknown>[]) => {
      const ctx = context(n);
      try {
        const plugin = mergePlugin(topPatchesJob, states);
        (await plugin.run(ctx, checkParams(plugin, n, raw))).dispose();
      } finally {
        freeContext(ctx);
      }
    };
    // A state of another k.
    const k3 = await shardsOf(net, { ...raw, k: 3 });
    await assert.rejects(
      () => mergeOn(net, [base[0], k3[1]]),
      /different parameters \(k\): params\.k is 4 in the first and 3/,
    );
    // Another model's states, or this merge run on another model.
    const alien = await shardsOf(other, raw);
    await assert.rejects(() => mergeOn(net, [base[0], alien[1]]), /different models/);
    await assert.rejects(() => mergeOn(other, base), /different models/);
    // Other data (fewer images).
    const fewer = await shardsOf(net, { ...raw, count: 20 });
    await assert.rejects(
      () => mergeOn(net, [base[0], fewer[1]]),
      /different (data|parameters \(count\))/,
    );
    // Another split, a missing and a repeated shard.
    const three = await shardsOf(net, raw, 3);
    await assert.rejects(() => mergeOn(net, [base[0], three[1]]), /different splits/);
    await assert.rejects(() => mergeOn(net, [three[0], three[2]]), /shard 1\/3 missing/);
    await assert.rejects(() => mergeOn(net, [base[0], base[0], base[1]]), /given twice/);
    // A missing file and a file that is not a state.
    await assert.rejects(
      () => readState(`${tmp}/nothing.state.json`),
      /Cannot read the state file/,
    );
    await Deno.writeTextFile(`${tmp}/x.state.json`, "{}");
    await assert.rejects(() => readState(`${tmp}/x.state.json`), /not a convlens state file/);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    net.dispose();
    other.dispose();
    await Deno.remove(data, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sharded deletion: 1, 2 and 3 shards merged give the single run's AUCs (1e-12) and curves (exactly)", async () => {
  const { loadNet } = await import("../core/load.ts");
  const net = await loadNet(
    decodeURIComponent(new URL("../models/mnist/", import.meta.url).pathname),
  );
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    // A deterministic map (saliency): shard boundaries change no map.
    const raw = { methods: "saliency", count: 7, steps: 4, batchSize: 5 };
    const want = await runOn(net, deletion, raw);
    const wantAuc = Array.from(await want.tensors.auc.data());
    const wantCurves = Array.from(await want.tensors.curves.data());
    for (const n of [1, 2, 3]) {
      const { result } = await sharded(net, deletionJob, { ...raw, batchSize: 4 }, n, tmp);
      const auc = Array.from(await result.tensors.auc.data());
      // Sums of 7 AUCs in [0, 1] added in another grouping: float64 rounding only,
      // then float32 in the tensor; the figures are float64.
      auc.forEach((a, i) =>
        assert.ok(Math.abs(a - wantAuc[i]) <= 1e-7, `${n}: ${a} vs ${wantAuc[i]}`)
      );
      for (const [k, v] of Object.entries(want.figures)) {
        const g = result.figures[k];
        if (typeof v === "number") {
          assert.ok(Math.abs((g as number) - v) <= 1e-12, `${k}: ${g} ${v}`);
        } else assert.equal(g, v);
      }
      assert.deepEqual(Array.from(await result.tensors.curves.data()), wantCurves, `${n} shards`);
      assert.deepEqual(result.tensors.curves.shape, want.tensors.curves.shape);
      result.dispose();
    }
    // The random order really is random per image, and the same in every split.
    const curves = await want.tensors.curves.array() as number[][][];
    assert.notDeepEqual(curves[3][0], curves[3][1]);
    want.dispose();
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sharded pointing-game: 1, 2 and 3 shards merged equal the single run exactly, drawn canvases included", async () => {
  const { loadNet } = await import("../core/load.ts");
  const net = await loadNet(
    decodeURIComponent(new URL("../models/canvas/", import.meta.url).pathname),
  );
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    const raw = { methods: "saliency", count: 10, show: 2, batchSize: 4 };
    const one = await runOn(net, pointingGame, raw);
    const want = await contents(one);
    one.dispose();
    for (const n of [1, 2, 3]) {
      const { result } = await sharded(net, pointingGameJob, { ...raw, batchSize: 3 }, n, tmp);
      assert.deepEqual(await contents(result), want, `${n} shards`);
      result.dispose();
    }
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sharded sanity-check: 1, 2 and 3 shards merged give the single run's correlations (1e-12) and drawn maps", async () => {
  const { loadNet } = await import("../core/load.ts");
  const net = await loadNet(
    decodeURIComponent(new URL("../models/mnist/", import.meta.url).pathname),
  );
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    const raw = { methods: "saliency", count: 5 };
    const one = await runOn(net, sanityCheck, raw);
    const want = await contents(one);
    const wantCorr = one.figures;
    one.dispose();
    for (const n of [1, 2, 3]) {
      const { result } = await sharded(net, sanityCheckJob, raw, n, tmp);
      for (const [k, v] of Object.entries(wantCorr)) {
        const g = result.figures[k];
        if (typeof v === "number") {
          assert.ok(Math.abs((g as number) - v) <= 1e-12, `${n} shards, ${k}: ${g} vs ${v}`);
        } else assert.equal(g, v, k);
      }
      // The drawn cascade (pair 0's maps, from shard 0) is the single run's, byte for byte.
      const got = await contents(result) as { images: unknown };
      assert.deepEqual(got.images, (want as { images: unknown }).images, `${n} shards`);
      result.dispose();
    }
  } finally {
    net.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("sharded top-patches over an ImageFolder (class subfolders, PNGs decoded per batch) equals the single run", async () => {
  const net = handNet();
  const flat = await tieFolder();
  const dir = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  const tmp = await Deno.makeTempDir({ prefix: "convlens-jobs-" });
  try {
    // The tie images split into two classes: the ImageFolder's index order is
    // class a's files, then class b's.
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    for await (const e of Deno.readDir(flat)) {
      const i = Number(/\d+/.exec(e.name)![0]);
      await Deno.copyFile(`${flat}/${e.name}`, `${dir}/${i % 2 ? "b" : "a"}/${e.name}`);
    }
    const raw = { data: dir, layer: "c1", k: 5, channels: [0, 1, 2], batchSize: 4 };
    const one = await single(net, raw);
    const want = await contents(one);
    assert.match(one.title, /image folder/);
    one.dispose();
    const { result } = await sharded(net, topPatchesJob, raw, 3, tmp);
    assert.deepEqual(await contents(result), want);
    result.dispose();
  } finally {
    net.dispose();
    for (const d of [flat, dir, tmp]) await Deno.remove(d, { recursive: true });
  }
});
