/**
 * Labelled test images for the marginalize plugins, a batch at a time: the
 * run's data set (`ctx.data()`, the built-in model's own test images or the
 * data the user named), else the run's own input images.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Context } from "../../../core/plugin.ts";
import { batches, type DataSource } from "../../../core/data/source.ts";

/** One batch of labelled test images, in model input space. */
export interface TestBatch {
  /** `[n, h, w, c]` model inputs (the caller disposes of them). */
  x: tf.Tensor4D;
  /** The true classes (-1 where unknown). */
  labels: number[];
  /** Index of the batch's first image among all test images. */
  offset: number;
}

/** Where a plugin's test images come from. */
export interface TestImages {
  /** How many images. */
  count: number;
  /** What they are, for captions. */
  source: string;
  /**
   * The images `[from, to)`, `batchSize` at a time (a shard of a job reads its
   * slice only).
   * @param batchSize Images per batch.
   * @param from First image. @default 0
   * @param to One past the last image. @default count
   * @returns The batches, their offsets global.
   */
  batches(batchSize: number, from?: number, to?: number): AsyncGenerator<TestBatch>;
}

/**
 * The first `count` labelled images of the run's data set, or the run's own
 * input images when the model has no data set.
 *
 * @param ctx The running plugin's context.
 * @param count How many images at most.
 * @returns The images, read batch by batch.
 */
export async function testImages(ctx: Context, count: number): Promise<TestImages> {
  let data: DataSource | undefined;
  try {
    data = await ctx.data();
  } catch {
    // No data set for this model: its input images are what there is.
  }
  if (data) {
    const source = data;
    const n = Math.min(count, source.size);
    return {
      count: n,
      source: n === source.size
        ? `the ${n} images of ${source.name}`
        : `the first ${n} images of ${source.name}`,
      async *batches(batchSize: number, from = 0, to = n) {
        let offset = from;
        const order = Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
        for await (const b of batches(source, batchSize, order)) {
          const labels = Array.from(await b.y.data() as Int32Array);
          const x = tf.tidy(() => ctx.net.fromPixels(b.x)) as tf.Tensor4D;
          tf.dispose([b.x, b.y]);
          yield { x, labels, offset };
          offset += labels.length;
        }
      },
    };
  }
  const n = Math.min(count, ctx.images.x.shape[0]);
  return {
    count: n,
    source: `${n} input images`,
    async *batches(batchSize: number, from = 0, to = n) {
      for (let i = from; i < to; i += batchSize) {
        const m = Math.min(batchSize, to - i);
        const x = ctx.images.x.slice([i, 0, 0, 0], [m, -1, -1, -1]);
        yield { x, labels: ctx.images.labels.slice(i, i + m), offset: i };
        await Promise.resolve();
      }
    },
  };
}
