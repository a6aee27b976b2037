/**
 * Reading Fashion-MNIST (issue 18): the training images read by index from
 * their decompressed cache file (`core/data/idx_file.ts`) against the IDX
 * file parsed into memory, one epoch of batches of 64, shuffled and in
 * order, with the time to open each source and the RSS after it.
 *
 *   nice -n 5 deno run -A bench/data_read.ts
 *
 * Not a `deno bench` file: one epoch per row.
 *
 * @module
 */
import { initBackend } from "../backends/mod.ts";
import { tf } from "../core/tf.ts";
import { idxSource, readIdx } from "../core/data/idx.ts";
import { idxFileSource } from "../core/data/idx_file.ts";
import { batches, type DataSource } from "../core/data/source.ts";
import { FASHION_CLASSES, FASHION_DIR } from "../core/data/fashion_mnist.ts";
import { seededRandom } from "../core/random.ts";

await initBackend("auto", { quiet: true });
const mb = () => (Deno.memoryUsage().rss / 1048576).toFixed(0);
const y = await readIdx(`${FASHION_DIR}/train-labels-idx1-ubyte.gz`);
let t0 = performance.now();
const file = await idxFileSource(
  `${FASHION_DIR}/train-images-idx3-ubyte.gz`,
  y,
  FASHION_CLASSES,
  "f",
);
console.log(
  `cache file source: opened in ${(performance.now() - t0).toFixed(0)} ms, RSS ${mb()} MB`,
);
t0 = performance.now();
const images = await readIdx(`${FASHION_DIR}/train-images-idx3-ubyte.gz`);
const memory = idxSource(images, y, FASHION_CLASSES, "m");
console.log(
  `in-memory source: opened in ${(performance.now() - t0).toFixed(0)} ms, RSS ${mb()} MB`,
);
const rng = seededRandom(1);
const order = Array.from({ length: 60_000 }, (_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(rng.next() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
console.log("| source | order | epoch of batch-64 reads ms |");
console.log("|---|---|---:|");
for (
  const [name, source] of [["cache file", file], ["in memory", memory]] as [string, DataSource][]
) {
  for (const [what, visit] of [["shuffled", order], ["in order", undefined]] as const) {
    t0 = performance.now();
    for await (const b of batches(source, 64, visit, { prefetch: 0 })) tf.dispose([b.x, b.y]);
    console.log(`| ${name} | ${what} | ${(performance.now() - t0).toFixed(0)} |`);
  }
}
