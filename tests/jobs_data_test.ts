/**
 * Data sources at scale (issue 18): bounded read-ahead (at most `depth` reads
 * beyond the batch in use, results in order, failures at their turn, reads
 * left over disposed), batches of an ImageFolder streamed from disk with
 * prefetch equal to reading them one by one, and the evaluation images read a
 * slice (or a list) at a time equal to reading them all at once.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { readAhead } from "../core/data/prefetch.ts";
import { batches, type DataSource, tensorSource } from "../core/data/source.ts";
import { imageFolder } from "../core/data/image_folder.ts";
import { writePng } from "../core/images/codecs.ts";
import type { Context } from "../core/plugin.ts";
import { seededRandom } from "../core/random.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { datasetFor } from "../core/data/dataset_for.ts";
import {
  disposeEvaluationImages,
  evaluationImages,
  evaluationSet,
} from "../plugins/attribute/eval/evaluation.ts";
import { builtinNet } from "./_jobs.ts";

await initBackend("cpu", { quiet: true });

Deno.test("readAhead keeps at most depth reads beyond the one in use, in order, for every depth", async () => {
  for (const depth of [0, 1, 3]) {
    let alive = 0, most = 0;
    const read = async (i: number) => {
      most = Math.max(most, ++alive);
      // Later reads finish first: the order must still be the reads' order.
      await new Promise((r) => setTimeout(r, 5 - (i % 5)));
      return i;
    };
    const got: number[] = [];
    for await (const v of readAhead(12, read, { depth })) {
      got.push(v);
      await new Promise((r) => setTimeout(r, 1));
      alive--;
    }
    assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i), `depth ${depth}`);
    assert.equal(most, depth + 1, `depth ${depth}: ${most} reads alive at once`);
  }
});

Deno.test("readAhead reports a failed read at its turn, and disposes what was read ahead when the consumer stops", async () => {
  const disposed: number[] = [];
  const got: number[] = [];
  await assert.rejects(async () => {
    for await (
      const v of readAhead(
        6,
        (i) => i === 3 ? Promise.reject(new Error("bad 3")) : Promise.resolve(i),
        {
          depth: 2,
          dispose: (v) => disposed.push(v),
        },
      )
    ) got.push(v);
  }, /bad 3/);
  // 0, 1, 2 were used; 4 and 5 had been read ahead when 3 failed, and were freed.
  assert.deepEqual(got, [0, 1, 2]);
  assert.deepEqual(disposed.sort(), [4, 5]);
  disposed.length = 0;
  for await (
    const v of readAhead(10, (i) => Promise.resolve(i), {
      depth: 2,
      dispose: (v) => disposed.push(v),
    })
  ) {
    if (v === 1) break;
  }
  assert.deepEqual(disposed, [2, 3]);
  await assert.rejects(
    () => readAhead(1, () => Promise.resolve(0), { depth: -1 }).next(),
    /depth -1/,
  );
  await assert.rejects(
    () => readAhead(1, () => Promise.resolve(0), { depth: 1.5 }).next(),
    /depth 1.5/,
  );
});

/** A folder of `n` 8x8 RGB PNGs in three class subfolders, each image different. */
async function pngFolder(n: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens-jobs-data-" });
  for (let i = 0; i < n; i++) {
    const cls = `c${i % 3}`;
    await Deno.mkdir(`${dir}/${cls}`, { recursive: true });
    const t = tf.tidy(() => tf.randomUniform([8, 8, 3], 0, 1, "float32", i) as tf.Tensor3D);
    await writePng(`${dir}/${cls}/${String(i).padStart(3, "0")}.png`, t);
    t.dispose();
  }
  return dir;
}

Deno.test("an ImageFolder streamed with prefetch gives the batches read one by one, holding at most prefetch + 1", async () => {
  const dir = await pngFolder(23);
  try {
    const source = await imageFolder(dir, { height: 8, width: 8, channels: 3 });
    // Counts the batches read and not yet disposed by the consumer.
    let alive = 0, most = 0;
    const counted: DataSource = {
      ...source,
      async batch(indices) {
        const b = await source.batch(indices);
        most = Math.max(most, ++alive);
        return b;
      },
    };
    const order = Array.from({ length: 23 }, (_, i) => (i * 7) % 23);
    const before = tf.memory().numTensors;
    for (const prefetch of [0, 1, 3]) {
      alive = most = 0;
      const seen: number[] = [];
      for await (const b of batches(counted, 4, order, { prefetch })) {
        const want = await source.batch(b.indices);
        assert.deepEqual(Array.from(await b.x.data()), Array.from(await want.x.data()));
        assert.deepEqual(Array.from(await b.y.data()), b.indices.map((i) => source.labelOf(i)));
        seen.push(...b.indices);
        tf.dispose([b.x, b.y, want.x, want.y]);
        alive--;
      }
      assert.deepEqual(seen, order, `prefetch ${prefetch}`);
      assert.ok(most <= prefetch + 1, `prefetch ${prefetch}: ${most} batches at once`);
      // A consumer that stops early leaves no batch behind.
      for await (const b of batches(counted, 4, order, { prefetch })) {
        tf.dispose([b.x, b.y]);
        break;
      }
      assert.equal(tf.memory().numTensors, before, `prefetch ${prefetch}: tensors leaked`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function contextOf(net: Context["net"], data?: string): Context {
  const { height, width, channels } = net.input;
  const images = imagesFromPixels(
    net,
    tf.randomUniform([5, height, width, channels], 0, 1, "float32", 3) as tf.Tensor4D,
    [0, 1, 0, 1, 0],
  );
  return {
    net,
    images,
    rng: seededRandom(0),
    seed: 0,
    progress: () => {},
    warn: () => {},
    run: () => Promise.reject(new Error("not in tests")),
    runOn: () => Promise.reject(new Error("not in tests")),
    data: () => data ? datasetFor(net, data) : Promise.reject(new Error("no data")),
  };
}

Deno.test("evaluation images read in slices or by index equal the images read all at once", async () => {
  for (const [model, data] of [["canvas", undefined], ["mnist", "mnist"], ["mnist", undefined]]) {
    const net = await builtinNet(model!);
    const ctx = contextOf(net, data);
    const before = tf.memory().numTensors;
    try {
      const all = await evaluationImages(ctx, 5, "test");
      const set = await evaluationSet(ctx, 5, "test");
      assert.equal(set.count, 5);
      assert.equal(set.source, all.source);
      const want = Array.from(await all.images.x.data());
      const per = want.length / 5;
      for (const indices of [[0, 1, 2, 3, 4], [3, 4], [4, 0, 2]]) {
        const contiguous = indices.every((v, i) => v === indices[0] + i);
        const got = contiguous
          ? await set.read(indices[0], indices[0] + indices.length)
          : await set.readAt(indices);
        assert.deepEqual(
          Array.from(await got.images.x.data()),
          indices.flatMap((i) => want.slice(i * per, (i + 1) * per)),
          `${model}/${data}: ${indices}`,
        );
        assert.deepEqual(got.images.labels, indices.map((i) => all.images.labels[i]));
        assert.deepEqual(got.images.names, indices.map((i) => all.images.names[i]));
        if (all.boxes) assert.deepEqual(got.boxes, indices.map((i) => all.boxes![i]));
        disposeEvaluationImages(got);
      }
      const none = await set.read(2, 2);
      assert.equal(none.images.x.shape[0], 0);
      disposeEvaluationImages(none);
      await assert.rejects(() => set.read(4, 6), /image 5 is not among the 5/);
      disposeEvaluationImages(all);
      assert.equal(tf.memory().numTensors, before, `${model}: tensors leaked`);
    } finally {
      tf.dispose([ctx.images.x, ctx.images.pixels]);
      net.dispose();
    }
  }
});

Deno.test("an in-memory source read through batches with prefetch covers every example once", async () => {
  const x = tf.tidy(() => tf.range(0, 10).reshape([10, 1, 1, 1]) as tf.Tensor4D);
  const source = tensorSource(x, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
  const seen: number[] = [];
  for await (const b of batches(source, 3, undefined, { prefetch: 2 })) {
    seen.push(...Array.from(await b.x.data()));
    tf.dispose([b.x, b.y]);
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  x.dispose();
});

/** IDX bytes of `n` h x w images (pixel values from the index), and their labels. */
function idxBytes(n: number, h: number, w: number): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(16 + n * h * w);
  const view = new DataView(images.buffer);
  view.setUint32(0, 0x0803);
  [n, h, w].forEach((d, i) => view.setUint32(4 + 4 * i, d));
  for (let i = 0; i < n * h * w; i++) images[16 + i] = (i * 37 + Math.floor(i / 7)) % 256;
  const labels = new Uint8Array(8 + n);
  new DataView(labels.buffer).setUint32(0, 0x0801);
  new DataView(labels.buffer).setUint32(4, n);
  for (let i = 0; i < n; i++) labels[8 + i] = i % 3;
  return { images, labels };
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("IDX images read by index from disk (gzipped: from a cache file made once) equal the in-memory source", async () => {
  const { idxSource, parseIdx } = await import("../core/data/idx.ts");
  const { idxFileSource } = await import("../core/data/idx_file.ts");
  const dir = await Deno.makeTempDir({ prefix: "convlens-jobs-idx-" });
  const before = tf.memory().numTensors;
  try {
    const { images, labels } = idxBytes(50, 5, 4);
    await Deno.writeFile(`${dir}/img`, images);
    await Deno.writeFile(`${dir}/img.gz`, await gzip(images));
    const y = await parseIdx(labels, "labels");
    const classes = ["a", "b", "c"];
    const mem = idxSource(await parseIdx(images, "images"), y, classes, "mem");
    const cache = `${dir}/cache`;
    // Runs, repeats, reversed and scattered indices.
    const order = [0, 1, 2, 3, 49, 48, 10, 10, 11, 30, 31, 32, 5];
    for (const path of [`${dir}/img`, `${dir}/img.gz`]) {
      const file = await idxFileSource(path, y, classes, "file", { cacheDir: cache });
      assert.equal(file.size, 50);
      assert.deepEqual(file.shape, [5, 4, 1]);
      const a = await file.batch(order), b = await mem.batch(order);
      assert.deepEqual(Array.from(await a.x.data()), Array.from(await b.x.data()), path);
      assert.deepEqual(Array.from(await a.y.data()), Array.from(await b.y.data()));
      tf.dispose([a.x, a.y, b.x, b.y]);
      await assert.rejects(() => file.batch([50]), /index 50 is out of range/);
    }
    // The gzipped file was decompressed once: a second source reuses the cache file,
    // and a truncated cache file is made again.
    const [cached] = await Array.fromAsync(Deno.readDir(cache));
    assert.equal((await Deno.stat(`${cache}/${cached.name}`)).size, images.length);
    await Deno.writeFile(`${cache}/${cached.name}`, images.subarray(0, 100));
    const again = await idxFileSource(`${dir}/img.gz`, y, classes, "file", { cacheDir: cache });
    const c = await again.batch([49]);
    const d = await mem.batch([49]);
    assert.deepEqual(Array.from(await c.x.data()), Array.from(await d.x.data()));
    tf.dispose([c.x, c.y, d.x, d.y]);
    assert.equal((await Deno.stat(`${cache}/${cached.name}`)).size, images.length);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Fashion-MNIST read by index from its cache file equals the IDX file parsed in memory", async () => {
  const { fashionMnist, FASHION_CLASSES, FASHION_DIR } = await import(
    "../core/data/fashion_mnist.ts"
  );
  const { idxSource, readIdx } = await import("../core/data/idx.ts");
  const test = await fashionMnist("test");
  const mem = idxSource(
    await readIdx(`${FASHION_DIR}/t10k-images-idx3-ubyte.gz`),
    await readIdx(`${FASHION_DIR}/t10k-labels-idx1-ubyte.gz`),
    FASHION_CLASSES,
    "in memory",
  );
  assert.equal(test.size, 10_000);
  const order = [9999, 0, 1, 2, 5000, 17, 18, 4242];
  const a = await test.batch(order), b = await mem.batch(order);
  assert.deepEqual(Array.from(await a.x.data()), Array.from(await b.x.data()));
  assert.deepEqual(Array.from(await a.y.data()), Array.from(await b.y.data()));
  tf.dispose([a.x, a.y, b.x, b.y]);
});
