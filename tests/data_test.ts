import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { idxSource, parseIdx } from "../core/data/idx.ts";
import {
  arraySource,
  batches,
  perClassIndices,
  shard,
  subset,
  tensorSource,
} from "../core/data/source.ts";
import { FASHION_CLASSES, FASHION_DIR, fashionMnist } from "../core/data/fashion_mnist.ts";
import { imageFolder } from "../core/data/image_folder.ts";
import { datasetFor } from "../core/data/dataset_for.ts";
import { encodePng } from "../core/images/codecs.ts";
import { Net } from "../core/net.ts";
import { Lens } from "../lens.ts";

await initBackend("wasm", { quiet: true });

/** An IDX file of bytes: magic 0x0000 08 rank, sizes, data. */
function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("parseIdx() reads IDX arrays, gzipped or not, and names what is wrong", async () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
  const raw = idxBytes([2, 3, 4], data);
  for (const bytes of [raw, await gzip(raw)]) {
    const a = await parseIdx(bytes, "t");
    assert.deepEqual(a.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(a.data), Array.from(data));
  }
  await assert.rejects(parseIdx(raw.subarray(0, raw.length - 1), "cut"), /cut is truncated/);
  await assert.rejects(parseIdx(Uint8Array.of(1, 2, 3, 4, 5), "png"), /not an IDX file/);
  const floats = raw.slice();
  floats[2] = 0x0d;
  await assert.rejects(parseIdx(floats, "f"), /element type 0xd is not unsigned byte/);
});

Deno.test("idxSource() batches bytes as floats in [0, 1] with their labels, by index", async () => {
  const images = {
    dims: [3, 2, 2],
    data: Uint8Array.from([0, 255, 51, 102, 1, 1, 1, 1, 255, 0, 0, 0]),
  };
  const labels = { dims: [3], data: Uint8Array.from([2, 0, 1]) };
  const s = idxSource(images, labels, ["a", "b", "c"], "tiny");
  assert.equal(s.size, 3);
  assert.deepEqual(s.shape, [2, 2, 1]);
  const before = tf.memory().numTensors;
  const { x, y } = await s.batch([2, 0]);
  assert.deepEqual(x.shape, [2, 2, 2, 1]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2]);
  const v = x.dataSync();
  assert.deepEqual(Array.from(v.slice(0, 4)), [1, 0, 0, 0]);
  assert.ok(Math.abs(v[6] - 0.2) < 1e-6 && Math.abs(v[7] - 0.4) < 1e-6);
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(s.batch([3]), /index 3 is out of range; give indices in \[0, 3\)/);
  assert.throws(
    () =>
      idxSource(images, { dims: [2], data: labels.data.subarray(0, 2) }, ["a", "b", "c"], "bad"),
    /do not pair up/,
  );
  assert.throws(() => idxSource(images, labels, ["a", "b"], "few"), /label 2 has no class/);
});

Deno.test("shards are disjoint, cover the source, and are the same slices every time", () => {
  const images = tf.zeros([10, 1, 1, 1]) as tf.Tensor4D;
  const s = tensorSource(images, Array.from({ length: 10 }, (_, i) => i % 3));
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) {
    const part = shard(s, i, 3);
    for (let k = 0; k < part.size; k++) seen.push(part.labelOf(k));
    assert.ok(part.size === 3 || part.size === 4);
  }
  assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => i % 3));
  assert.throws(() => shard(s, 3, 3), /shard 3\/3 is invalid/);
  assert.deepEqual(perClassIndices(s, 2), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(perClassIndices(s, 2, [1]), [1, 4]);
  const sub = subset(s, [9, 0]);
  assert.equal(sub.labelOf(0), 0);
  assert.throws(() => subset(s, [10]), /index 10 is out of range/);
  images.dispose();
});

Deno.test("batches() visits every example once in the order given, the last batch smaller", async () => {
  const px = Float32Array.from({ length: 7 }, (_, i) => i / 10);
  const s = arraySource({
    name: "seven",
    pixels: px,
    labels: [0, 1, 0, 1, 0, 1, 0],
    shape: [1, 1, 1],
    classes: ["a", "b"],
  });
  const got: number[] = [];
  const sizes: number[] = [];
  for await (const b of batches(s, 3, [6, 5, 4, 3, 2, 1, 0])) {
    got.push(...Array.from(b.x.dataSync()).map((v) => Math.round(v * 10)));
    sizes.push(b.x.shape[0]);
    tf.dispose([b.x, b.y]);
  }
  assert.deepEqual(got, [6, 5, 4, 3, 2, 1, 0]);
  assert.deepEqual(sizes, [3, 3, 1]);
});

const haveFashion = await Deno.stat(`${FASHION_DIR}/train-images-idx3-ubyte.gz`).then(
  () => true,
  () => false,
);
if (Deno.env.get("CI") === "true" && !haveFashion) {
  throw new Error("CI installs dataset-fashion-mnist; its files are missing");
}

Deno.test({
  name: "Fashion-MNIST: 60,000 + 10,000 real images, 6,000 and 1,000 of each class",
  ignore: !haveFashion,
  fn: async () => {
    const train = await fashionMnist("train"), test = await fashionMnist("test");
    assert.equal(train.size, 60_000);
    assert.equal(test.size, 10_000);
    assert.deepEqual(train.classes, FASHION_CLASSES);
    for (const [s, each] of [[train, 6000], [test, 1000]] as const) {
      const counts = new Array(10).fill(0);
      for (let i = 0; i < s.size; i++) counts[s.labelOf(i)]++;
      assert.deepEqual(counts, new Array(10).fill(each));
    }
    // The first test image is an ankle boot (label 9); real images use the whole range.
    assert.equal(test.labelOf(0), 9);
    const { x, y } = await test.batch([0, 1, 2, 3]);
    const v = Array.from(x.dataSync());
    assert.ok(Math.max(...v) === 1 && Math.min(...v) === 0);
    assert.ok(v.reduce((a, b) => a + b, 0) / v.length > 0.1);
    tf.dispose([x, y]);
  },
});

Deno.test("a missing Fashion-MNIST names the package to install and where else to get the files", async () => {
  const empty = await Deno.makeTempDir();
  const old = Deno.env.get("CONVLENS_FASHION_MNIST");
  Deno.env.set("CONVLENS_FASHION_MNIST", empty);
  try {
    await assert.rejects(
      fashionMnist("test"),
      (e: Error) =>
        /apt install dataset-fashion-mnist/.test(e.message) &&
        /CONVLENS_FASHION_MNIST/.test(e.message) && e.message.includes(empty),
    );
  } finally {
    if (old === undefined) Deno.env.delete("CONVLENS_FASHION_MNIST");
    else Deno.env.set("CONVLENS_FASHION_MNIST", old);
    await Deno.remove(empty);
  }
});

Deno.test("imageFolder() takes classes from sorted subfolders and decodes, resizes per batch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = (v: number, size: number) =>
      encodePng({
        width: size,
        height: size,
        data: new Uint8ClampedArray(size * size * 4).fill(v).map((x, i) => i % 4 === 3 ? 255 : x),
      });
    for (const [cls, v] of [["zebra", 200], ["ant", 50]] as const) {
      await Deno.mkdir(`${dir}/${cls}`);
      await Deno.writeFile(`${dir}/${cls}/b.png`, await png(v, 6));
      await Deno.writeFile(`${dir}/${cls}/a.png`, await png(v, 4));
      await Deno.writeTextFile(`${dir}/${cls}/notes.txt`, "not an image");
    }
    const s = await imageFolder(dir, { height: 5, width: 5, channels: 1 });
    assert.deepEqual(s.classes, ["ant", "zebra"]);
    assert.equal(s.size, 4);
    assert.deepEqual([0, 1, 2, 3].map((i) => s.labelOf(i)), [0, 0, 1, 1]);
    const { x, y } = await s.batch([3, 0]);
    assert.deepEqual(x.shape, [2, 5, 5, 1]);
    assert.deepEqual(Array.from(y.dataSync()), [1, 0]);
    const v = x.dataSync();
    assert.ok(Math.abs(v[0] - 200 / 255) < 1e-3 && Math.abs(v[25] - 50 / 255) < 1e-3);
    tf.dispose([x, y]);
    await Deno.mkdir(`${dir}/empty`);
    await assert.rejects(
      imageFolder(`${dir}/empty`, { height: 5, width: 5 }),
      /no images in class subfolders/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("datasetFor() gives built-in data to built-in models only, and checks data against the model", async () => {
  const model = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [8, 8, 1] }), tf.layers.dense({ units: 2 })],
  });
  const mine = Net.fromModel(model, {
    name: "mine",
    input: { height: 8, width: 8, channels: 1, range: [0, 1], mean: [0], std: [1] },
  });
  await assert.rejects(
    datasetFor(mine),
    /has no built-in data: give --data fashion\|fashion-train\|mnist\|canvas, or --data <folder>/,
  );
  await assert.rejects(
    datasetFor(mine, "mnist"),
    /mnist held-out holds 28x28x1 images but the model takes 8x8x1/,
  );
  const digits = Net.fromModel(model, {
    name: "mnist",
    input: { height: 28, width: 28, channels: 1, range: [0, 1], mean: [0], std: [1] },
  });
  const own = await datasetFor(digits);
  assert.equal(own.size, 2000);
  mine.dispose();
});

Deno.test({
  name: 'Lens.open({ data: "fashion" }) takes its inputs and its data set from Fashion-MNIST',
  ignore: !haveFashion,
  fn: async () => {
    const lens = await Lens.open({ data: "fashion", count: 3, quiet: true });
    try {
      assert.equal(lens.images.names[0], "fashion-mnist test image 0 (Ankle boot)");
      assert.deepEqual(lens.images.labels, [9, 2, 1]);
      assert.equal((await lens.data()).size, 10_000);
    } finally {
      lens.dispose();
    }
  },
});
