/**
 * Checkpoints of a `fit` run: after each epoch, the model's weights (batch-norm
 * statistics included), the optimizer's moments, the history and the
 * early-stopping state, written to a folder so that a run killed mid-way
 * resumes after its last finished epoch. The binary files carry the epoch in
 * their names and `state.json` is written last, atomically, naming them: a run
 * killed while writing leaves the previous checkpoint whole.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { writeFileAtomic } from "../files.ts";
import type { Optimizer, OptimizerState } from "./optimizers.ts";
import type { EpochLog } from "./fit.ts";

const FORMAT = "convlens-fit-checkpoint";

/** What identifies a run: a checkpoint resumes only the run it came from. */
export interface RunKey {
  /** The run's seed. */
  seed: number;
  /** The run's epochs. */
  epochs: number;
}

/** A checkpoint as read back. */
export interface Checkpoint {
  /** Epochs finished. */
  epoch: number;
  /** The logs of those epochs. */
  history: EpochLog[];
  /** Early stopping: the best value of the monitored figure so far. */
  best: number | undefined;
  /** The epoch that reached it. */
  bestEpoch: number;
  /** Epochs since then without improvement. */
  wait: number;
  /** Early stopping had stopped the run. */
  stopped: boolean;
  /** The best epoch's weights under early stopping (the caller disposes). */
  bestWeights?: tf.Tensor[];
}

/** What {@linkcode writeCheckpoint} saves. */
export interface CheckpointParts extends Omit<Checkpoint, "bestWeights"> {
  /** The model being trained. */
  model: tf.LayersModel;
  /** Its optimizer. */
  optimizer: Optimizer;
  /** The trainable variables, in the order the optimizer sees them. */
  variables: readonly tf.Variable[];
  /** The run. */
  run: RunKey;
  /** The best epoch's weights under early stopping. */
  bestWeights?: readonly tf.Tensor[];
}

interface State {
  format: typeof FORMAT;
  run: RunKey;
  epoch: number;
  history: EpochLog[];
  best: number | null;
  bestEpoch: number;
  wait: number;
  stopped: boolean;
  weights: { file: string; shapes: number[][] };
  best_weights: { file: string; shapes: number[][] } | null;
  optimizer: { file: string; steps: number; slots: Record<string, number[]>[] };
}

/** Arrays one after another, as the bytes of one file. */
function concat(parts: readonly Float32Array[]): Uint8Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return new Uint8Array(out.buffer);
}

async function pack(tensors: readonly tf.Tensor[]): Promise<Uint8Array> {
  return concat(await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>)));
}

function unpack(bytes: Uint8Array, shapes: number[][], what: string): Float32Array[] {
  const all = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
  const need = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  if (all.length !== need) {
    throw new Error(
      `${what} holds ${all.length} values, its manifest ${need}: the checkpoint is damaged; remove it`,
    );
  }
  let at = 0;
  return shapes.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    const part = all.subarray(at, at + n);
    at += n;
    return part;
  });
}

/**
 * Writes the checkpoint of a finished epoch into `dir`.
 *
 * @param dir The folder (created if missing).
 * @param parts The model, optimizer and loop state.
 * @returns When `state.json` names the new files.
 */
export async function writeCheckpoint(dir: string, parts: CheckpointParts): Promise<void> {
  const e = parts.epoch;
  const weights = parts.model.getWeights();
  const opt = await parts.optimizer.getState(parts.variables);
  const slotTensors: Float32Array[] = [];
  const slotShapes = opt.slots.map((s) => {
    const shapes: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(s)) {
      shapes[k] = v.shape;
      slotTensors.push(v.values);
    }
    return shapes;
  });
  const files = {
    weights: `epoch-${e}.weights.bin`,
    optimizer: `epoch-${e}.optimizer.bin`,
    best: `epoch-${e}.best.bin`,
  };
  await writeFileAtomic(`${dir}/${files.weights}`, await pack(weights));
  await writeFileAtomic(`${dir}/${files.optimizer}`, concat(slotTensors));
  if (parts.bestWeights) {
    await writeFileAtomic(`${dir}/${files.best}`, await pack(parts.bestWeights));
  }
  const state: State = {
    format: FORMAT,
    run: parts.run,
    epoch: e,
    history: parts.history,
    best: parts.best ?? null,
    bestEpoch: parts.bestEpoch,
    wait: parts.wait,
    stopped: parts.stopped,
    weights: { file: files.weights, shapes: weights.map((w) => w.shape) },
    best_weights: parts.bestWeights
      ? { file: files.best, shapes: parts.bestWeights.map((w) => w.shape) }
      : null,
    optimizer: { file: files.optimizer, steps: opt.steps, slots: slotShapes },
  };
  await writeFileAtomic(`${dir}/state.json`, JSON.stringify(state) + "\n");
  // Only now are older epochs' files unreferenced.
  const keep = new Set(["state.json", files.weights, files.optimizer, files.best]);
  for await (const f of Deno.readDir(dir)) {
    if (f.isFile && /^epoch-\d+\..*\.bin$/.test(f.name) && !keep.has(f.name)) {
      await Deno.remove(`${dir}/${f.name}`).catch(() => {});
    }
  }
}

/**
 * Reads the checkpoint in `dir` into `model` and `optimizer`, or returns null
 * when there is none.
 *
 * @param dir The folder.
 * @param model Receives the saved weights.
 * @param optimizer Receives the saved moments.
 * @param variables The trainable variables, in the order the optimizer saw them.
 * @param run The run being resumed.
 * @returns The loop state, or null.
 * @throws {Error} when the checkpoint is of another run or model, or damaged.
 */
export async function readCheckpoint(
  dir: string,
  model: tf.LayersModel,
  optimizer: Optimizer,
  variables: readonly tf.Variable[],
  run: RunKey,
): Promise<Checkpoint | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/state.json`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const state = JSON.parse(text) as State;
  if (state.format !== FORMAT) throw new Error(`${dir}/state.json is not a fit checkpoint`);
  if (state.run.seed !== run.seed || state.run.epochs !== run.epochs) {
    throw new Error(
      `the checkpoint in ${dir} is of a run with seed ${state.run.seed} and ` +
        `${state.run.epochs} epochs, not seed ${run.seed} and ${run.epochs}: give the same ` +
        "seed and epochs to resume it, or another --checkpoint folder to start afresh",
    );
  }
  const current = model.getWeights();
  if (
    current.length !== state.weights.shapes.length ||
    current.some((w, i) => w.shape.join() !== state.weights.shapes[i].join())
  ) {
    throw new Error(`the checkpoint in ${dir} holds the weights of another model`);
  }
  const read = async (file: string, shapes: number[][]) =>
    unpack(await Deno.readFile(`${dir}/${file}`), shapes, `${dir}/${file}`);
  const values = await read(state.weights.file, state.weights.shapes);
  const tensors = values.map((v, i) => tf.tensor(v, state.weights.shapes[i]));
  model.setWeights(tensors);
  tf.dispose(tensors);
  const slotShapes = state.optimizer.slots.flatMap((s) => Object.values(s));
  const slotValues = await read(state.optimizer.file, slotShapes);
  let k = 0;
  const opt: OptimizerState = {
    steps: state.optimizer.steps,
    slots: state.optimizer.slots.map((s) => {
      const out: OptimizerState["slots"][number] = {};
      for (const [name, shape] of Object.entries(s)) out[name] = { shape, values: slotValues[k++] };
      return out;
    }),
  };
  optimizer.setState(opt, variables);
  let bestWeights: tf.Tensor[] | undefined;
  if (state.best_weights) {
    const b = await read(state.best_weights.file, state.best_weights.shapes);
    bestWeights = b.map((v, i) => tf.tensor(v, state.best_weights!.shapes[i]));
  }
  return {
    epoch: state.epoch,
    history: state.history,
    best: state.best ?? undefined,
    bestEpoch: state.bestEpoch,
    wait: state.wait,
    stopped: state.stopped,
    bestWeights,
  };
}
