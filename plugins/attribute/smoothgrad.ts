/**
 * `smoothgrad` (attribute): SmoothGrad of Smilkov, Thorat, Kim, Viégas &
 * Wattenberg, "SmoothGrad: removing noise by adding noise" (2017). Any attribution
 * is averaged over `n` copies of the input with Gaussian noise of standard
 * deviation `sigma * (max(x) - min(x))` added (or, with `magnitude`, the squares
 * are averaged: SmoothGrad-squared). {@linkcode smoothGrad} wraps any
 * {@linkcode Attribution} and returns one (Captum's NoiseTunnel); the plugin wraps
 * any registered attribution plugin by name.
 *
 * The noisy samples of all images are attributed in batches of `batchSize`; each
 * sample's noise comes from its own seed, drawn in a fixed order from the run's
 * generator, and each image's sum is accumulated sample by sample in order, so the
 * result does not depend on the batch size.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { ParamError } from "../../core/params.ts";
import { seededRandom } from "../../core/random.ts";
import { type Attribution, ATTRIBUTION_PARAMS, pluginAttribution } from "./attribution.ts";
import { attributionResult } from "./figures.ts";
import { checkTarget, resolveClasses } from "./targets.ts";
import { chunks, readOnce } from "./batches.ts";
import { batchSizeFor } from "../../core/memory_budget.ts";

/** The most noisy samples one call takes, whatever the memory budget allows. */
const MAX_BATCH = 64;

/** Options of a {@linkcode smoothGrad} attribution. */
export interface SmoothGradOptions<O extends object = Record<string, unknown>> {
  /** Noisy samples per image. @default 50 */
  samples?: number;
  /** Noise standard deviation as a fraction of each image's value range. @default 0.15 */
  sigma?: number;
  /** Average the squares of the attributions (SmoothGrad-squared). @default false */
  magnitude?: boolean;
  /**
   * Noisy samples per call of the wrapped method.
   * @default as many as fit the memory budget (`core/memory_budget.ts`), at most 64
   */
  batchSize?: number;
  /** Seed of the noise. @default 0 */
  seed?: number;
  /** Options of the wrapped method. @default {} */
  method?: O;
  /** Called after each batch with samples done and the total. @default undefined */
  progress?: (done: number, total: number) => void;
}

/**
 * Wraps an attribution method in SmoothGrad.
 *
 * @param inner Any attribution method.
 * @returns The smoothed method, named `smoothgrad(<inner>)`.
 * @example Smoothed saliency
 * ```ts ignore
 * const smooth = smoothGrad(saliencyAttribution);
 * const a = await smooth.attribute(net, x, [7], { samples: 25, sigma: 0.1 });
 * a.dispose();
 * ```
 */
export function smoothGrad<O extends object>(
  inner: Attribution<O>,
): Attribution<SmoothGradOptions<O>> {
  return {
    name: `smoothgrad(${inner.name})`,
    async attribute(net: Net, x: tf.Tensor4D, target: readonly number[], options = {}) {
      checkTarget(net, x, target, "smoothgrad");
      const samples = options.samples ?? 50;
      const sigma = options.sigma ?? 0.15;
      const batchSize = options.batchSize ?? batchSizeFor(net, MAX_BATCH);
      if (!Number.isInteger(samples) || samples < 1) {
        throw new RangeError(`smoothgrad: samples must be an integer >= 1, got ${samples}`);
      }
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new RangeError(`smoothgrad: batchSize must be an integer >= 1, got ${batchSize}`);
      }
      if (!(sigma >= 0)) throw new RangeError(`smoothgrad: sigma must be >= 0, got ${sigma}`);
      const n = x.shape[0];
      const shape = x.shape.slice(1) as [number, number, number];
      const rng = seededRandom(options.seed ?? 0);
      const seeds = Array.from({ length: n * samples }, () => rng.seedForTf());
      const sds = Array.from(
        await readOnce(tf.tidy(() => {
          const flat = x.reshape([n, -1]);
          const range = tf.sub(flat.max(1), flat.min(1));
          return tf.mul(tf.where(tf.greater(range, 0), range, tf.onesLike(range)), sigma);
        })),
      );
      const sums: (tf.Tensor | undefined)[] = Array(n).fill(undefined);
      try {
        for (const [start, count] of chunks(n * samples, batchSize)) {
          const rows = Array.from({ length: count }, (_, r) => start + r);
          const image = rows.map((r) => Math.floor(r / samples));
          const xs = tf.tidy(() =>
            tf.stack(rows.map((r, k) => {
              const i = image[k];
              const noise = tf.randomNormal(shape, 0, 1, "float32", seeds[r]);
              return tf.add(
                x.slice([i, 0, 0, 0], [1, -1, -1, -1]).squeeze([0]),
                tf.mul(noise, sds[i]),
              );
            })) as tf.Tensor4D
          );
          let a: tf.Tensor4D;
          try {
            a = await inner.attribute(net, xs, image.map((i) => target[i]), options.method);
          } finally {
            xs.dispose();
          }
          try {
            // Sample by sample, in order: the sums do not depend on the batching.
            for (let k = 0; k < count; k++) {
              const i = image[k];
              const next = tf.tidy(() => {
                let v: tf.Tensor = a.slice([k, 0, 0, 0], [1, -1, -1, -1]);
                if (options.magnitude) v = tf.square(v);
                return sums[i] ? tf.add(sums[i]!, v) : v.clone();
              });
              sums[i]?.dispose();
              sums[i] = next;
            }
          } finally {
            a.dispose();
          }
          options.progress?.(start + count, n * samples);
        }
        return tf.tidy(() => tf.div(tf.concat(sums as tf.Tensor[]), samples) as tf.Tensor4D);
      } finally {
        tf.dispose(sums.filter((s): s is tf.Tensor => s !== undefined));
      }
    },
  };
}

/** The parameters of the `smoothgrad` plugin: its schema, declared once. */
export const SMOOTHGRAD_PARAMS = {
  ...ATTRIBUTION_PARAMS,
  method: {
    type: "string",
    default: "saliency",
    help: "attribution plugin to smooth (saliency, guided-backprop, integrated-gradients, ...)",
  },
  params: { type: "string", default: "{}", help: "that plugin's parameters, as JSON" },
  samples: { type: "integer", default: 50, min: 1, max: 10000, help: "noisy samples per image" },
  sigma: {
    type: "number",
    default: 0.15,
    min: 0,
    max: 10,
    help: "noise std as a fraction of the image's value range",
  },
  magnitude: { type: "boolean", default: false, help: "average squared attributions" },
  batchSize: {
    type: "integer",
    min: 1,
    max: 4096,
    help: `samples per call (default: as many as fit the memory budget, at most ${MAX_BATCH})`,
  },
} as const;

/** The schema type of the `smoothgrad` plugin's parameters. */
export type SmoothGradParams = typeof SMOOTHGRAD_PARAMS;

/** The `smoothgrad` plugin. */
export const smoothgrad: Plugin<typeof SMOOTHGRAD_PARAMS> = definePlugin({
  name: "smoothgrad",
  family: "attribute",
  summary: "SmoothGrad: any attribution averaged over noisy copies of the input (Smilkov et al.)",
  params: SMOOTHGRAD_PARAMS,
  resultShape(_net, _p, images) {
    const [n, h, w, c] = images.x.shape;
    return { attribution: [n, h, w, c], map: [n, h, w] };
  },
  demo: [{}, { method: "guided-backprop", samples: 25 }],
  async run(ctx, p) {
    const { net, images } = ctx;
    if (p.method === "smoothgrad") {
      throw new ParamError(
        "smoothgrad: --method smoothgrad would smooth itself; name another method",
      );
    }
    let params: Record<string, unknown>;
    try {
      params = JSON.parse(p.params);
      if (typeof params !== "object" || params === null || Array.isArray(params)) throw new Error();
    } catch {
      throw new ParamError(
        `Parameter --params of smoothgrad must be a JSON object such as {"steps":32}, got ${p.params}`,
      );
    }
    const classes = await resolveClasses(net, images.x, p.class, "smoothgrad");
    const method = smoothGrad(pluginAttribution(ctx, p.method, params));
    const attribution = await method.attribute(net, images.x, classes, {
      samples: p.samples,
      sigma: p.sigma,
      magnitude: p.magnitude,
      batchSize: p.batchSize ?? batchSizeFor(net, MAX_BATCH, { memoryMB: ctx.memoryMB }),
      seed: ctx.rng.seedForTf(),
      progress: (done, total) => ctx.progress(done, total),
    });
    const r = await attributionResult(images, {
      net: ctx.net,
      plugin: "smoothgrad",
      title: `SmoothGrad${p.magnitude ? "-squared" : ""} of ${p.method} (${p.samples} samples, ` +
        `sigma ${p.sigma})`,
      attribution,
      classes,
      render: p.render,
      mapLabel: `|smoothed ${p.method}| (max over channels)`,
    });
    return r.figure("smoothed", p.method).figure("samples", p.samples).figure("sigma", p.sigma);
  },
});
