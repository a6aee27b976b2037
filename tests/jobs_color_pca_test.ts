/**
 * The PCA-lighting statistics as a mergeable state: colour moments of N
 * shards of a data set, merged in any grouping, give the single run's
 * covariance and eigenvalues. Each batch is summed in float32 and batches in
 * float64, and shards cut the batches elsewhere than one run does: the bound
 * is float32 rounding, 1e-6 of the pixel range [0, 1] (measured: under 3e-9).
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { arraySource } from "../core/data/source.ts";
import { seededRandom } from "../core/random.ts";
import { mergeAll } from "../core/jobs/mergeable.ts";
import {
  COLOR_MOMENTS_STATE,
  colorMoments,
  colorPcaOf,
  fitColorPca,
} from "../plugins/train/augment/fancy_pca.ts";
import { shardRange } from "../core/jobs/shard_spec.ts";

await tf.setBackend("cpu");

function rgbSet(n: number) {
  const r = seededRandom(9);
  const pixels = new Float32Array(n * 5 * 4 * 3);
  for (let i = 0; i < pixels.length / 3; i++) {
    const a = r.next(), b = r.next(), c = r.next();
    pixels.set([0.6 * a + 0.1 * c, 0.2 * a + 0.5 * b, 0.3 * b + 0.3 * c], i * 3);
  }
  return arraySource({
    name: "rgb",
    pixels,
    shape: [5, 4, 3],
    labels: Array(n).fill(0),
    classes: ["x"],
  });
}

function near(a: readonly number[], b: readonly number[], what: string) {
  a.forEach((v, i) =>
    assert.ok(
      Math.abs(v - b[i]) <= 1e-6,
      `${what}[${i}]: ${v} vs ${b[i]}`,
    )
  );
}

Deno.test("colour moments of 1, 2, 3 and 7 shards, merged in any grouping, give the single fit", async () => {
  const data = rgbSet(50);
  const before = tf.memory().numTensors;
  const single = await fitColorPca(data, { batchSize: 8 });
  for (const n of [1, 2, 3, 7]) {
    const parts = await Promise.all(Array.from({ length: n }, (_, i) => {
      const [start, end] = shardRange(data.size, { index: i, count: n });
      return colorMoments(data, { start, count: end - start, batchSize: 8 });
    }));
    // Through the state files' encoding, merged left to right and right to left.
    const decoded = parts.map((p) => COLOR_MOMENTS_STATE.decode(COLOR_MOMENTS_STATE.encode(p)));
    const left = colorPcaOf(mergeAll(COLOR_MOMENTS_STATE, decoded));
    const right = colorPcaOf(decoded.reduceRight((acc, m) => COLOR_MOMENTS_STATE.merge(m, acc)));
    for (const pca of [left, right]) {
      assert.equal(pca.pixels, single.pixels);
      near(pca.mean, single.mean, `${n} shards: mean`);
      near(pca.covariance.flat(), single.covariance.flat(), `${n} shards: covariance`);
      near(pca.eigenvalues, single.eigenvalues, `${n} shards: eigenvalues`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("colour moments refuse a slice outside the data and a state of another job", async () => {
  const data = rgbSet(10);
  await assert.rejects(() => colorMoments(data, { start: 10 }), /start 10 is invalid: give 0 to 9/);
  await assert.rejects(
    () => colorMoments(data, { start: 4, count: 7 }),
    /count 7 is invalid: give 1 to 6/,
  );
  assert.throws(
    () => COLOR_MOMENTS_STATE.decode({ json: {}, arrays: {} }),
    /holds no colour moments/,
  );
});
