/**
 * `ensemble` (train): model ensembles, "train several independent models, at
 * test time average their results" (the lecture's "noise at training,
 * marginalized at test" with the noise being the random initialization and
 * data order; about 2% better in the ImageNet submissions). The plugin trains M
 * small ConvNets (with batch norm, DropConnect and dropout) with `fit` on the
 * same training images, each from its own seed, measures each member and the
 * ensemble on the test images, and returns the ensemble as one model (see
 * `core/ensemble.ts`): saved with `--out` as `ensemble-model/`, it is a model
 * like any other, so every plugin runs on it (`--model D/ensemble-model --data
 * fashion`), MC-dropout included (its members have dropout and DropConnect).
 *
 * Training images: a built-in model's training set (the 60,000 Fashion-MNIST
 * training images for `--model fashion`), else the run's data set (then the
 * members are measured on what they trained on, and a note says so). Members
 * are cached under `--cache DIR` when given, one folder per recipe.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { ParamValues } from "../../../core/params.ts";
import { Result } from "../../../core/result.ts";
import { ensembleModel } from "../../../core/ensemble.ts";
import { loadNet, saveLayersModel } from "../../../core/load.ts";
import { type DataSource, subset } from "../../../core/data/source.ts";
import { BUILTIN_NAMES, builtinModel } from "../../../core/builtin/mod.ts";
import { fit } from "../../../core/train/fit.ts";
import { mixSeed, seededRandom } from "../../../core/random.ts";
import { linePlot } from "../../../core/plots/plot.ts";
import { denseDropConnect } from "./drop_connect.ts";
import { testImages } from "./_data.ts";

/** Options of {@linkcode buildEnsembleMember}. */
export interface EnsembleMemberOptions {
  /** Filters of the three 3x3 conv blocks. @default [32, 64, 64] */
  filters?: readonly [number, number, number];
  /** Units of the hidden DropConnect layer. @default 128 */
  units?: number;
  /** DropConnect rate of the hidden layer (0: a plain dense layer). @default 0.25 */
  dropConnect?: number;
  /** Dropout rate before the classifier. @default 0.25 */
  dropout?: number;
  /** Batch normalization after each convolution. @default true */
  batchNorm?: boolean;
}

/**
 * A small ConvNet for an ensemble: three blocks of 3x3 conv (+ batch norm) +
 * ReLU + 2x2 max-pool, flatten, a DropConnect ReLU layer, dropout, `logits`,
 * `probs` (softmax). Initializers and masks are seeded from `seed`.
 *
 * @param shape Input `[h, w, c]` (at least 8x8).
 * @param classes Number of classes.
 * @param seed Seed of the initializers and masks.
 * @param options Widths and rates.
 * @returns The model (uncompiled).
 * @throws {RangeError} for inputs smaller than 8x8.
 */
export function buildEnsembleMember(
  shape: readonly [number, number, number],
  classes: number,
  seed: number,
  options: EnsembleMemberOptions = {},
): tf.Sequential {
  if (shape[0] < 8 || shape[1] < 8) {
    throw new RangeError(
      `Ensemble members take images of at least 8x8 (three 2x2 poolings); these are ` +
        `${shape[0]}x${shape[1]}`,
    );
  }
  const filters = options.filters ?? [32, 64, 64];
  const bn = options.batchNorm ?? true;
  let s = mixSeed(seed, 31) & 0x7fffffff;
  const model = tf.sequential({ name: "member" });
  filters.forEach((f, i) => {
    model.add(tf.layers.conv2d({
      name: `conv${i + 1}`,
      filters: f,
      kernelSize: 3,
      padding: "same",
      useBias: !bn,
      activation: bn ? "linear" : "relu",
      kernelInitializer: tf.initializers.heNormal({ seed: ++s }),
      ...(i === 0 ? { inputShape: [...shape] } : {}),
    }));
    if (bn) {
      model.add(tf.layers.batchNormalization({ name: `bn${i + 1}`, momentum: 0.9 }));
      model.add(tf.layers.reLU({ name: `relu${i + 1}` }));
    }
    model.add(tf.layers.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2 }));
  });
  model.add(tf.layers.flatten({ name: "flatten" }));
  model.add(denseDropConnect({
    name: "fc1",
    units: options.units ?? 128,
    rate: options.dropConnect ?? 0.25,
    activation: "relu",
    kernelInitializer: "heNormal",
    initSeed: ++s,
    seed: ++s,
  }));
  model.add(tf.layers.dropout({ name: "dropout", rate: options.dropout ?? 0.25, seed: ++s }));
  model.add(tf.layers.dense({
    name: "logits",
    units: classes,
    kernelInitializer: tf.initializers.glorotUniform({ seed: ++s }),
  }));
  model.add(tf.layers.activation({ name: "probs", activation: "softmax" }));
  return model;
}

/** The parameters of the `ensemble` plugin: its schema, declared once. */
export const ENSEMBLE_PARAMS = {
  members: { type: "integer", default: 5, min: 1, max: 50, help: "models in the ensemble" },
  epochs: { type: "integer", default: 2, min: 1, max: 100, help: "epochs of each member" },
  trainCount: {
    type: "integer",
    default: 10_000,
    min: 8,
    help: "training images (a seeded draw, the same for every member)",
  },
  count: {
    type: "integer",
    default: 10_000,
    min: 1,
    help: "test images (the first of the run's data set; all of them when fewer)",
  },
  batchSize: { type: "integer", default: 64, min: 1, help: "training batch size" },
  learningRate: { type: "number", default: 0.002, min: 0, max: 1, help: "Adam learning rate" },
  dropConnect: {
    type: "number",
    default: 0.25,
    min: 0,
    max: 0.95,
    help: "DropConnect rate of the members' hidden layer",
  },
  dropout: { type: "number", default: 0.25, min: 0, max: 0.95, help: "members' dropout rate" },
  batchNorm: { type: "boolean", default: true, help: "batch norm after each convolution" },
  cache: { type: "string", help: "folder to keep trained members in and reuse (default: none)" },
} as const;

/** The options of the `ensemble` plugin. */
export type EnsemblePluginOptions = ParamValues<typeof ENSEMBLE_PARAMS>;

/** Training images: the built-in model's training set, else the run's data set. */
async function trainingData(
  name: string | undefined,
  fallback: () => Promise<DataSource>,
): Promise<{ data: DataSource; own: boolean }> {
  if (name && (BUILTIN_NAMES as readonly string[]).includes(name)) {
    return { data: (await builtinModel(name).data(1, 1)).train, own: true };
  }
  return { data: await fallback(), own: false };
}

function slug(s: string): string {
  return s.replace(/[^a-zA-Z0-9.]+/g, "-").replace(/^-|-$/g, "").slice(0, 60);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The `ensemble` plugin. */
export const ensemble: Plugin<typeof ENSEMBLE_PARAMS> = definePlugin({
  name: "ensemble",
  family: "train",
  summary: "Model ensembles: M members trained from their own seeds, probabilities averaged",
  params: ENSEMBLE_PARAMS,
  needsImages: false,
  // Five members trained for minutes each are not a demo: three small ones, one epoch.
  demo: [{ members: 3, epochs: 1, trainCount: 1000, count: 500, batchNorm: false }],
  async run(ctx, p) {
    const { net } = ctx;
    net.checkClassOutput("an ensemble");
    const { height, width, channels } = net.input;
    const { data: train, own } = await trainingData(net.sidecar.name, () => ctx.data());
    if (train.shape.join() !== [height, width, channels].join()) {
      throw new RangeError(
        `${train.name} holds ${train.shape.join("x")} images but the model takes ` +
          `${height}x${width}x${channels}: give --data with images of that size`,
      );
    }
    const n = Math.min(p.trainCount, train.size);
    const picked = seededRandom(mixSeed(ctx.seed, 97)).shuffle(
      Array.from({ length: train.size }, (_, i) => i),
    ).slice(0, n);
    const trainSet = subset(train, picked, `${n} images of ${train.name}`);
    const classes = Math.max(net.numClasses, train.classes.length);
    // The members take the training images' values (the data's range, no mean or std).
    const [lo, hi] = train.range;
    const memberInput = {
      height,
      width,
      channels,
      range: [lo, hi] as [number, number],
      mean: [0],
      std: [1],
    };
    const memberOptions: EnsembleMemberOptions = {
      dropConnect: p.dropConnect,
      dropout: p.dropout,
      batchNorm: p.batchNorm,
    };
    const recipe = {
      data: train.name,
      trainCount: n,
      epochs: p.epochs,
      batchSize: p.batchSize,
      learningRate: p.learningRate,
      seed: ctx.seed,
      classes,
      shape: [height, width, channels],
      ...memberOptions,
    };
    const folder = p.cache
      ? `${p.cache.replace(/\/+$/, "")}/${slug(train.name)}-n${n}-e${p.epochs}-b${p.batchSize}-` +
        `lr${p.learningRate}-dc${p.dropConnect}-do${p.dropout}-bn${p.batchNorm ? 1 : 0}-` +
        `s${ctx.seed}`
      : undefined;
    const members: tf.LayersModel[] = [];
    const rows: (string | number)[][] = [];
    const memberProbs: tf.Tensor2D[] = [];
    let ens: tf.LayersModel | undefined;
    let reused = 0;
    try {
      for (let k = 0; k < p.members; k++) {
        const seed = mixSeed(ctx.seed, 1000 + k) & 0x7fffffff;
        const dir = folder ? `${folder}/member${k}` : undefined;
        let model: tf.LayersModel | undefined;
        let trainAccuracy: number | string = "cached";
        if (dir && await exists(`${dir}/model.json`)) {
          const saved = JSON.parse(await Deno.readTextFile(`${dir}/convlens.json`));
          if (JSON.stringify(saved.recipe) === JSON.stringify(recipe)) {
            const loaded = await loadNet(dir);
            model = loaded.model as tf.LayersModel;
            trainAccuracy = saved.trainAccuracy ?? "cached";
            reused++;
          }
        }
        if (!model) {
          model = buildEnsembleMember([height, width, channels], classes, seed, memberOptions);
          members.push(model);
          const { history } = await fit(model, trainSet, {
            epochs: p.epochs,
            batchSize: Math.min(p.batchSize, n),
            seed,
            optimizer: { name: "adam" },
            schedule: { kind: "cosine", learningRate: p.learningRate, finalFraction: 0.05 },
            logits: "logits",
          });
          trainAccuracy = history.at(-1)!.accuracy;
          if (dir) {
            await saveLayersModel(model, dir, {
              name: `ensemble member ${k}`,
              input: memberInput,
              labels: [...train.classes],
              logits: "logits",
              probs: "probs",
              recipe,
              memberSeed: seed,
              trainAccuracy,
            });
          }
        } else members.push(model);
        rows.push([`member ${k}`, seed, trainAccuracy]);
        ctx.progress(k + 1, p.members + 1);
      }
      ens = await ensembleModel(members, { name: `ensemble-of-${p.members}` });
      // Each member's and the ensemble's test predictions.
      const test = await testImages(ctx, p.count);
      const labels: number[] = [];
      const ensProbs: tf.Tensor2D[] = [];
      const perMember: tf.Tensor2D[][] = members.map(() => []);
      for await (const b of test.batches(250)) {
        labels.push(...b.labels);
        // From the Net's input space back to the values the members trained on.
        const x = tf.tidy(() => net.toPixels(b.x).mul(hi - lo).add(lo));
        b.x.dispose();
        for (const [k, m] of members.entries()) {
          perMember[k].push(tf.tidy(() => m.predict(x) as tf.Tensor2D));
        }
        ensProbs.push(tf.tidy(() => ens!.predict(x) as tf.Tensor2D));
        x.dispose();
      }
      for (const parts of perMember) {
        memberProbs.push(parts.length === 1 ? parts[0] : tf.concat(parts));
        if (parts.length > 1) tf.dispose(parts);
      }
      const probs = ensProbs.length === 1 ? ensProbs[0] : tf.concat(ensProbs);
      if (ensProbs.length > 1) tf.dispose(ensProbs);
      const known = labels.map((l, i) => [l, i]).filter(([l]) => l >= 0).map(([, i]) => i);
      if (known.length === 0) {
        probs.dispose();
        throw new RangeError(
          "ensemble measures test accuracy and needs labelled images: give --data (a named data " +
            "set or a folder with one subfolder per class)",
        );
      }
      const accuracyOf = async (q: tf.Tensor2D): Promise<number> => {
        const pred = tf.tidy(() => q.argMax(1));
        const a = await pred.data() as Int32Array;
        pred.dispose();
        return known.filter((i) => a[i] === labels[i]).length / known.length;
      };
      const accs: number[] = [];
      for (const q of memberProbs) accs.push(await accuracyOf(q));
      const ensembleAccuracy = await accuracyOf(probs);
      // Ensembles of the first k members, k = 1..M.
      const byK: number[] = [];
      for (let k = 1; k <= members.length; k++) {
        const mean = tf.tidy(() => tf.addN(memberProbs.slice(0, k)).div(k) as tf.Tensor2D);
        byK.push(await accuracyOf(mean));
        mean.dispose();
      }
      const meanMember = accs.reduce((s, a) => s + a, 0) / accs.length;
      const r = new Result("ensemble", `Ensemble of ${p.members} ConvNets on ${test.source}`);
      r.figure("members", p.members);
      r.figure("memberAccuracies", accs.map((a) => a.toFixed(4)).join(", "));
      r.figure("meanMemberAccuracy", meanMember);
      r.figure("bestMemberAccuracy", Math.max(...accs));
      r.figure("ensembleAccuracy", ensembleAccuracy);
      r.figure("gain", ensembleAccuracy - meanMember);
      r.figure("trainCount", n);
      r.figure("epochs", p.epochs);
      r.figure("count", known.length);
      r.table(
        `Test accuracy of each member and of the ensemble (trained on ${trainSet.name})`,
        ["model", "seed", "training accuracy (last epoch)", "test accuracy"],
        [
          ...rows.map((row, k) => [...row, accs[k]]),
          ["mean member", "", "", meanMember],
          [`ensemble of ${p.members}`, "", "", ensembleAccuracy],
        ],
      );
      r.addPlot(
        "ensemble-size",
        linePlot([
          { name: "ensemble of the first k members", x: byK.map((_, i) => String(i + 1)), y: byK },
          {
            name: "member k alone",
            x: accs.map((_, i) => String(i + 1)),
            y: accs,
            mark: "scatter",
          },
          {
            name: "mean member",
            x: accs.map((_, i) => String(i + 1)),
            y: accs.map(() => meanMember),
            dashed: true,
          },
        ], {
          xLabel: "members k",
          yLabel: "test accuracy",
          title: "Averaging the probabilities of more members",
        }),
        "Test accuracy of the ensemble of the first k members, and of each member alone",
      );
      r.tensor("probabilities", probs);
      r.setModel(ens, {
        name: `ensemble of ${p.members}`,
        input: memberInput,
        labels: [...train.classes],
        logits: "logits",
        probs: "probs",
        recipe,
        testAccuracy: ensembleAccuracy,
        memberAccuracies: accs,
      });
      ens = undefined;
      if (!own) {
        r.note(
          `No training set is known for this model: the members trained on ${train.name}, the ` +
            "run's data set, which the test images also come from.",
        );
      }
      if (folder) r.note(`Members cached in ${folder} (${reused} of them reused).`);
      r.note(
        "The ensemble model (ensemble-model/ with --out) runs with every plugin: " +
          "--model <out>/ensemble-model --data <its data>.",
      );
      return r;
    } finally {
      ens?.dispose();
      for (const m of members) m.dispose();
      tf.dispose(memberProbs);
    }
  },
});
