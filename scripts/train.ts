/**
 * Trains a built-in model (`mnist`, `canvas` or `fashion`) by its recipe in
 * `core/builtin/`, measures it on its test data and saves it to
 * `models/NAME/` (`model.json`, `weights.bin`, `convlens.json` with the
 * figures, the history and the command that made it).
 *
 * ```sh
 * deno task train fashion --epochs 10 --seed 1 --checkpoint out/ckpt-fashion
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { saveLayersModel } from "../core/load.ts";
import { progressBar } from "../core/progress.ts";
import { fit } from "../core/train/fit.ts";
import { evaluate } from "../core/train/metrics.ts";
import { type DataSource, subset } from "../core/data/source.ts";
import { BUILTIN_NAMES, builtinModel, type BuiltinSidecar } from "../core/builtin/mod.ts";

const USAGE = `usage: deno task train ${BUILTIN_NAMES.join("|")} [--epochs N] [--seed 1]
       [--out models/NAME] [--backend auto|wasm|webgpu|cpu] [--checkpoint DIR]
       [--limit N (train on the first N examples, measure on at most N: a quick try)]`;

/** An integer flag; a RangeError names the flag and the smallest value allowed. */
function intFlag(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} ${v} is invalid: give an integer of at least ${min}`);
  }
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      epochs: { type: "string" },
      seed: { type: "string", default: "1" },
      out: { type: "string" },
      backend: { type: "string" },
      checkpoint: { type: "string" },
      limit: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new RangeError(`give one model to train\n${USAGE}`);
  const recipe = builtinModel(positionals[0]);
  const epochs = intFlag("epochs", values.epochs ?? String(recipe.epochs), 1);
  const seed = intFlag("seed", values.seed, 1);
  const out = values.out ?? `models/${recipe.name}`;
  if (!out.trim() || out.replace(/\/+$/, "") === "") {
    throw new RangeError("--out is empty or the filesystem root: give a folder");
  }
  const backend = await initBackend(values.backend);
  tf.randomUniform([1]).dispose(); // warm the backend up outside the timing
  const limit = values.limit === undefined ? undefined : intFlag("limit", values.limit, 1);
  const data = await recipe.data(seed, epochs);
  const first = (d: DataSource) =>
    limit === undefined || limit >= d.size
      ? d
      : subset(d, Array.from({ length: limit }, (_, i) => i), `${d.name} (first ${limit})`);
  const train = first(data.train), test = first(data.test);
  const model = recipe.build(seed);
  try {
    const options = recipe.fitOptions(epochs, seed);
    const r = await fit(model, train, {
      ...options,
      validation: recipe.finish ? undefined : test,
      checkpoint: values.checkpoint,
      progress: progressBar(),
    });
    let seconds = r.trainSeconds;
    if (recipe.finish) {
      const t0 = performance.now();
      await recipe.finish(model);
      seconds += (performance.now() - t0) / 1000;
    }
    const m = await evaluate(model, test);
    console.log(
      `${recipe.name}: accuracy ${(m.accuracy * 100).toFixed(2)}% on ${m.count} ${test.name} ` +
        `images, ${r.history.length} epochs, training ${seconds.toFixed(1)} s wall-clock, ` +
        `backend ${backend}`,
    );
    const sidecar: BuiltinSidecar = {
      name: recipe.name,
      input: recipe.input,
      labels: [...recipe.labels],
      logits: "logits",
      probs: "probs",
      heldOutAccuracy: Number(m.accuracy.toFixed(4)),
      heldOutTop5: Number(m.topK.toFixed(4)),
      heldOutCount: m.count,
      trainSeconds: Number(seconds.toFixed(1)),
      backend,
      epochs: r.history.length,
      seed,
      data: recipe.dataNote,
      command: `deno task train ${recipe.name} --epochs ${epochs} --seed ${seed} ` +
        `--backend ${backend}${limit === undefined ? "" : ` --limit ${limit}`}`,
      history: r.history.map((h) => ({
        epoch: h.epoch,
        loss: Number(h.loss.toFixed(4)),
        accuracy: Number(h.accuracy.toFixed(4)),
        ...(h.valAccuracy !== undefined
          ? { valLoss: Number(h.valLoss!.toFixed(4)), valAccuracy: h.valAccuracy }
          : {}),
        learningRate: Number(h.learningRate.toPrecision(3)),
        seconds: Number(h.seconds.toFixed(1)),
      })),
    };
    await saveLayersModel(model, out, sidecar);
    console.log(`saved ${out}/model.json, weights.bin, convlens.json`);
  } finally {
    model.dispose();
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`train: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
