/**
 * `mc-dropout` (train): Monte Carlo dropout (Gal & Ghahramani, "Dropout as a
 * Bayesian Approximation", ICML 2016), the other way to "marginalize over the
 * noise" at test time: instead of the mean-weight rule (dropout's scaling,
 * DropConnect's mean weights), run the net T times with its dropout and
 * DropConnect layers drawing masks as in training and average the T softmax
 * outputs. The passes also say how sure the net is of each image: the spread
 * (standard deviation over the passes) of the probability of the class the mean
 * picks, the predictive entropy of the mean, and the mutual information
 * between the prediction and the masks (entropy of the mean minus the mean
 * entropy of the passes), which is high where the passes disagree.
 *
 * Only the noise layers switch to training mode: batch normalization keeps its
 * moving statistics (a pass in full training mode would normalize each batch by
 * its own statistics, and update the moving ones). The masks of pass t of batch
 * b come from seeds derived from (seed, t, b), so a run is the same twice.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Net } from "../../../core/net.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import { Result } from "../../../core/result.ts";
import { mixSeed } from "../../../core/random.ts";
import { batchSizeFor } from "../../../core/memory_budget.ts";
import { outputKind } from "../../../core/train/metrics.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { testImages } from "./_data.ts";

/** The layers of a model, those of nested models included. */
function allLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((l) => l instanceof tf.LayersModel ? [l, ...allLayers(l)] : [l]);
}

/** Layer classes whose training-mode noise comes from a `seed`. */
const SEEDED_NOISE = ["Dropout", "SpatialDropout1D"];

/** Layer classes whose noise cannot be seeded (tfjs draws it unseeded). */
const UNSEEDED_NOISE = ["GaussianDropout", "GaussianNoise", "AlphaDropout"];

/**
 * The layers that draw masks in training mode from a `seed`: dropout and
 * DropConnect (any layer that says `reseedPerStep`).
 *
 * @param model The model.
 * @returns The layers, those inside nested models included.
 */
export function stochasticLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return allLayers(model).filter((l) =>
    SEEDED_NOISE.includes(l.getClassName()) ||
    (l as unknown as { reseedPerStep?: boolean }).reseedPerStep === true
  );
}

/**
 * The LayersModel of a Net whose noise layers can be sampled.
 * @throws {RangeError} for a GraphModel, a model without seeded noise layers,
 *   or one with unseeded noise (not repeatable).
 */
function noisyModel(net: Net): { model: tf.LayersModel; layers: tf.layers.Layer[] } {
  if (!(net.model instanceof tf.LayersModel)) {
    throw new RangeError(
      "MC-dropout switches the model's dropout layers on, which needs a LayersModel; this " +
        "model is a GraphModel (its dropout was removed at export): load the LayersModel",
    );
  }
  const unseeded = allLayers(net.model).filter((l) => UNSEEDED_NOISE.includes(l.getClassName()));
  if (unseeded.length) {
    throw new RangeError(
      `MC-dropout needs repeatable masks, but ${
        unseeded.map((l) => `"${l.name}" (${l.getClassName()})`).join(", ")
      } draw unseeded noise in tfjs: use Dropout or DropConnect layers`,
    );
  }
  const layers = stochasticLayers(net.model);
  if (layers.length === 0) {
    throw new RangeError(
      "This model has no Dropout or DropConnect layer, so MC-dropout's passes would all be " +
        "the same: give a model trained with dropout (the built-in mnist and canvas models, " +
        "or the ensemble plugin's members and ensemble, which have dropout and DropConnect)",
    );
  }
  return { model: net.model, layers };
}

/**
 * Runs `fn` with the model's batch-normalization layers held in inference mode
 * even when the model is called in training mode, and puts them back after.
 */
function withFrozenBatchNorm<T>(model: tf.LayersModel, fn: () => T): T {
  const bns = allLayers(model).filter((l) => l.getClassName() === "BatchNormalization");
  const calls = bns.map((l) => l.call);
  bns.forEach((l, i) => {
    l.call = (inputs, kwargs) => calls[i].call(l, inputs, { ...kwargs, training: false });
  });
  try {
    return fn();
  } finally {
    bns.forEach((l, i) => l.call = calls[i]);
  }
}

/** Options of {@linkcode mcDropoutPredict}. */
export interface McDropoutOptions {
  /** Stochastic passes T. @default 20 */
  passes?: number;
  /** Seed of the masks. @default 0 */
  seed?: number;
  /** Index of this batch in a longer run (mixed into the seeds). @default 0 */
  batchIndex?: number;
}

/** What {@linkcode mcDropoutPredict} returns; the caller owns every tensor. */
export interface McDropoutPrediction {
  /** Mean of the passes' probabilities, `[n, classes]`. */
  mean: tf.Tensor2D;
  /** Standard deviation over the passes of the probability of the mean's class, `[n]`. */
  spread: tf.Tensor1D;
  /** Entropy of the mean prediction, in nats, `[n]`. */
  entropy: tf.Tensor1D;
  /** Entropy of the mean minus the mean entropy of the passes (mutual information), `[n]`. */
  mutualInformation: tf.Tensor1D;
}

/**
 * Monte Carlo dropout predictions of a batch: T passes with the dropout and
 * DropConnect layers drawing masks (batch norm in inference mode), their mean
 * and spread.
 *
 * @param net A classifier (LayersModel) with dropout or DropConnect layers.
 * @param x Images `[n, h, w, c]` in model input space.
 * @param options Passes, seed.
 * @returns Mean probabilities and per-image spread, entropy and mutual information.
 * @throws {RangeError} for a model without noise layers, a GraphModel, or T < 2.
 */
export function mcDropoutPredict(
  net: Net,
  x: tf.Tensor4D,
  options: McDropoutOptions = {},
): McDropoutPrediction {
  const passes = options.passes ?? 20;
  if (!Number.isInteger(passes) || passes < 2) {
    throw new RangeError(`passes ${passes} is invalid: give at least 2 stochastic passes`);
  }
  net.checkClassOutput("MC-dropout probabilities");
  net.checkInput(x);
  const { model, layers } = noisyModel(net);
  const kind = outputKind(model);
  const seed = options.seed ?? 0, b = options.batchIndex ?? 0;
  const own = layers.map((l) => (l as unknown as { seed?: number }).seed);
  const probsOf = (out: tf.Tensor): tf.Tensor2D =>
    (kind === "probs"
      ? out
      : kind === "binary"
      ? tf.concat([tf.sub(1, out), out], 1)
      : tf.softmax(out as tf.Tensor2D)) as tf.Tensor2D;
  const entropyOf = (p: tf.Tensor2D) => p.mul(p.maximum(1e-30).log()).sum(1).neg();
  // Welford's running mean and sum of squared deviations: no cancellation when the
  // passes barely differ.
  let avg: tf.Tensor | undefined, sq: tf.Tensor | undefined, ent: tf.Tensor | undefined;
  try {
    withFrozenBatchNorm(model, () => {
      // One pass at a time, so that only one pass's activations are alive.
      for (let t = 0; t < passes; t++) {
        layers.forEach((l, k) => {
          (l as unknown as { seed?: number }).seed = mixSeed(seed, t, b, k) & 0x7fffffff;
        });
        const next = tf.tidy(() => {
          const p = probsOf(model.apply(x, { training: true }) as tf.Tensor);
          const e = entropyOf(p);
          if (!avg) return [p, tf.zerosLike(p), e];
          const delta = p.sub(avg);
          const next = avg.add(delta.div(t + 1));
          return [next, sq!.add(delta.mul(p.sub(next))), ent!.add(e)];
        });
        tf.dispose([avg!, sq!, ent!].filter((v) => v !== undefined));
        [avg, sq, ent] = next;
      }
    });
    return tf.tidy(() => {
      const mean = avg!.clone() as tf.Tensor2D;
      const hot = tf.oneHot(mean.argMax(1), mean.shape[1]);
      const spread = sq!.div(passes).mul(hot).sum(1).relu().sqrt() as tf.Tensor1D;
      const entropy = entropyOf(mean) as tf.Tensor1D;
      const mutualInformation = entropy.sub(ent!.div(passes)).relu() as tf.Tensor1D;
      return { mean, spread, entropy, mutualInformation };
    });
  } finally {
    tf.dispose([avg!, sq!, ent!].filter((v) => v !== undefined));
    layers.forEach((l, k) => (l as unknown as { seed?: number }).seed = own[k]);
  }
}

/**
 * Area under the ROC curve of a score separating the wrong predictions
 * (positives) from the right ones: the chance that a random wrong image scores
 * above a random right one (ties count half).
 */
function auroc(score: Float32Array, wrong: boolean[]): number {
  const idx = Array.from(score.keys()).sort((a, b) => score[a] - score[b]);
  let rankSum = 0, pos = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j < idx.length && score[idx[j]] === score[idx[i]]) j++;
    const rank = (i + j + 1) / 2; // ranks i+1..j, averaged
    for (let k = i; k < j; k++) {
      if (wrong[idx[k]]) {
        rankSum += rank;
        pos++;
      }
    }
    i = j;
  }
  const neg = idx.length - pos;
  return pos && neg ? (rankSum - pos * (pos + 1) / 2) / (pos * neg) : NaN;
}

/** The parameters of the `mc-dropout` plugin: its schema, declared once. */
export const MC_DROPOUT_PARAMS = {
  count: {
    type: "integer",
    default: 10_000,
    min: 1,
    help: "test images (the first of the run's data set; all of them when fewer)",
  },
  passes: { type: "integer", default: 30, min: 2, max: 1000, help: "stochastic passes T" },
  batchSize: {
    type: "integer",
    min: 1,
    help: "images per pass (default: the memory budget's, at most 512)",
  },
} as const;

/** The options of the `mc-dropout` plugin. */
export type McDropoutPluginOptions = ParamValues<typeof MC_DROPOUT_PARAMS>;

/** The `mc-dropout` plugin. */
export const mcDropout: Plugin<typeof MC_DROPOUT_PARAMS> = definePlugin({
  name: "mc-dropout",
  family: "train",
  summary:
    "MC-dropout: T passes with dropout on, their mean and per-image spread (Gal & Ghahramani)",
  params: MC_DROPOUT_PARAMS,
  needsImages: false,
  // The demo takes fewer images and passes than the defaults.
  demo: [{ count: 500, passes: 10 }],
  async run(ctx, p) {
    const { net } = ctx;
    const { layers } = noisyModel(net);
    net.checkClassOutput("MC-dropout");
    const data = await testImages(ctx, p.count);
    const n = data.count;
    const size = p.batchSize ??
      batchSizeFor(net, 512, { pass: "forward", memoryMB: ctx.memoryMB });
    const spread = new Float32Array(n), entropy = new Float32Array(n), mi = new Float32Array(n);
    const labels = new Int32Array(n), det = new Int32Array(n), mc = new Int32Array(n);
    const means: tf.Tensor2D[] = [];
    let batch = 0;
    try {
      for await (const b of data.batches(size)) {
        const r = mcDropoutPredict(net, b.x, {
          passes: p.passes,
          seed: ctx.seed,
          batchIndex: batch++,
        });
        const plain = tf.tidy(() => net.probabilities(b.x).argMax(1));
        const mcClass = tf.tidy(() => r.mean.argMax(1));
        spread.set(await r.spread.data() as Float32Array, b.offset);
        entropy.set(await r.entropy.data() as Float32Array, b.offset);
        mi.set(await r.mutualInformation.data() as Float32Array, b.offset);
        det.set(await plain.data() as Int32Array, b.offset);
        mc.set(await mcClass.data() as Int32Array, b.offset);
        labels.set(b.labels, b.offset);
        means.push(r.mean);
        tf.dispose([r.spread, r.entropy, r.mutualInformation, plain, mcClass, b.x]);
        ctx.progress(b.offset + b.labels.length, n);
      }
      const known = Array.from(labels.keys()).filter((i) => labels[i] >= 0);
      if (known.length === 0) {
        throw new RangeError(
          "mc-dropout compares the spread on right and wrong predictions and needs labelled " +
            "images: give --data (a named data set or a folder with one subfolder per class)",
        );
      }
      const right = known.filter((i) => mc[i] === labels[i]);
      const wrong = known.filter((i) => mc[i] !== labels[i]);
      const avg = (v: Float32Array, of: number[]) =>
        of.length ? of.reduce((s, i) => s + v[i], 0) / of.length : NaN;
      const res = new Result("mc-dropout", `MC-dropout: ${p.passes} passes over ${data.source}`);
      res.figure("passes", p.passes);
      res.figure("count", known.length);
      res.figure("layers", layers.map((l) => l.name).join(", "));
      res.figure(
        "accuracyDeterministic",
        known.filter((i) => det[i] === labels[i]).length / known.length,
      );
      res.figure("accuracyMc", right.length / known.length);
      res.figure("wrong", wrong.length);
      res.figure("spreadCorrect", avg(spread, right));
      res.figure("spreadWrong", avg(spread, wrong));
      res.figure("entropyCorrect", avg(entropy, right));
      res.figure("entropyWrong", avg(entropy, wrong));
      res.figure("mutualInformationCorrect", avg(mi, right));
      res.figure("mutualInformationWrong", avg(mi, wrong));
      const isWrong = known.map((i) => mc[i] !== labels[i]);
      const pick = (v: Float32Array) => Float32Array.from(known, (i) => v[i]);
      res.figure("spreadAuroc", auroc(pick(spread), isWrong));
      res.table(
        "Uncertainty on the images the MC mean classifies right and wrong (mean over the images; " +
          "AUROC: chance that a wrong image scores above a right one)",
        ["measure", "right", "wrong", "AUROC"],
        [
          [
            "spread of the class probability",
            avg(spread, right),
            avg(spread, wrong),
            auroc(pick(spread), isWrong),
          ],
          [
            "predictive entropy (nats)",
            avg(entropy, right),
            avg(entropy, wrong),
            auroc(pick(entropy), isWrong),
          ],
          ["mutual information (nats)", avg(mi, right), avg(mi, wrong), auroc(pick(mi), isWrong)],
        ],
      );
      // Histogram of the spread, right against wrong, as fractions of each group.
      const bins = 20, top = Math.max(1e-6, ...known.map((i) => spread[i]));
      const hist = (of: number[]) => {
        const h = new Array(bins).fill(0);
        for (const i of of) h[Math.min(bins - 1, Math.floor(spread[i] / top * bins))]++;
        return h.map((c) => of.length ? c / of.length : 0);
      };
      const xs = Array.from({ length: bins }, (_, k) => (k + 0.5) * top / bins);
      res.addPlot(
        "spread",
        linePlot([
          { name: `right (${right.length})`, x: xs, y: hist(right) },
          { name: `wrong (${wrong.length})`, x: xs, y: hist(wrong), dashed: true },
        ], {
          xLabel: "spread: std over the passes of the probability of the predicted class",
          yLabel: "fraction of the images",
          title: "MC-dropout spread on right and wrong predictions",
        }),
        "Histogram of the per-image spread, as fractions of the right and of the wrong predictions",
      );
      res.tensor("mean", means.length === 1 ? means[0] : tf.concat(means));
      if (means.length > 1) tf.dispose(means);
      means.length = 0;
      res.tensor("spread", tf.tensor1d(spread));
      res.tensor("entropy", tf.tensor1d(entropy));
      res.tensor("mutualInformation", tf.tensor1d(mi));
      res.note(
        `Noise layers sampled: ${
          layers.map((l) => `${l.name} (${l.getClassName()})`).join(", ")
        }; ` +
          "batch normalization, if any, in inference mode.",
      );
      return res;
    } finally {
      tf.dispose(means);
    }
  },
});
