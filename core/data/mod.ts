/**
 * Labelled images for training and for data-set-wide plugins: the
 * {@linkcode DataSource} contract (read by index, in bounded memory, sliced by
 * shards), sources over tensors, typed arrays, IDX files, image folders,
 * Fashion-MNIST, and `datasetFor`, which picks a model's data.
 *
 * @example Shard 1 of 3 of an in-memory source
 * ```ts
 * import { tf } from "../tf.ts";
 * import { shard, tensorSource } from "./mod.ts";
 * const x = tf.zeros([9, 2, 2, 1]) as tf.Tensor4D;
 * const part = shard(tensorSource(x, [0, 1, 2, 0, 1, 2, 0, 1, 2]), 1, 3);
 * if (part.size !== 3 || part.labelOf(0) !== 0) throw new Error();
 * x.dispose();
 * ```
 *
 * @module
 */
export * from "./source.ts";
export * from "./prefetch.ts";
export * from "./idx.ts";
export * from "./idx_file.ts";
export * from "./image_folder.ts";
export * from "./fashion_mnist.ts";
export * from "./dataset_for.ts";
