/**
 * Ensembles as one model: several classifiers taking the same images become
 * one functional LayersModel whose members are nested models (`member0`,
 * `member1`, ...) and whose output is the average of their class
 * probabilities, so that a {@linkcode Net} of it is an ordinary Net and every
 * plugin runs on it. A member layer answers to its path, `member0/m0_conv2`
 * (each member's layers get the prefix `m<i>_`, since a saved model needs
 * weight names that are unique across the members).
 *
 * The layer before the final softmax, `logits`, gives
 * `log((1/M) sum_m softmax(z_m))`, the log of the averaged probabilities,
 * computed stably from each member's logits `z_m`. Its softmax is the average
 * itself (the average sums to 1), so class-score plugins see logits whose
 * softmax is the ensemble's prediction and whose gradient is the gradient of
 * the log of the averaged probability.
 *
 * @example Two members, one Net
 * ```ts
 * import { tf } from "./tf.ts";
 * import { ensembleNet } from "./ensemble.ts";
 * const member = (seed: number) => tf.sequential({ layers: [
 *   tf.layers.flatten({ inputShape: [4, 4, 1], name: "flat" }),
 *   tf.layers.dense({ units: 3, name: "logits", kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
 *   tf.layers.activation({ activation: "softmax", name: "probs" }),
 * ] });
 * const a = member(1), b = member(2);
 * const net = await ensembleNet([a, b]);
 * const x = tf.ones([1, 4, 4, 1]);
 * const p = net.probabilities(x);
 * const want = tf.add(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor).div(2);
 * if (tf.sub(p, want).abs().max().dataSync()[0] > 1e-6) throw new Error("not the mean");
 * tf.dispose([x, p, want]);
 * net.dispose(); a.dispose(); b.dispose();
 * ```
 *
 * @module
 */
import { tf } from "./tf.ts";
import { Net, type Sidecar } from "./net.ts";

/**
 * The log of the mean of the members' softmax probabilities, from their logits:
 * `logsumexp_m(log_softmax(z_m)) - log M`, per class.
 */
export class MeanProbabilityLogits extends tf.layers.Layer {
  /** The class name under which it is serialized. */
  static className = "MeanProbabilityLogits";

  /** Shape of the output: each member's `[batch, classes]`. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  }

  /** The log of the averaged probabilities. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const zs = Array.isArray(inputs) ? inputs : [inputs];
      const logP = tf.stack(zs.map((z) => tf.logSoftmax(z)));
      return tf.logSumExp(logP, 0).sub(Math.log(zs.length));
    });
  }
}

tf.serialization.registerClass(MeanProbabilityLogits);

/** Options of {@linkcode ensembleModel}. */
export interface EnsembleOptions {
  /** The model's name. @default "ensemble" */
  name?: string;
}

/** A layer's entry in a model config, as `toJSON` writes it. */
interface LayerEntry {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name: string; layers?: LayerEntry[] };
  inbound_nodes?: unknown[][][];
}

/** A model's config (Sequential: `layers` only; functional: also inputs and outputs). */
interface ModelConfig {
  name: string;
  layers: LayerEntry[];
  input_layers?: unknown[][];
  output_layers?: unknown[][];
}

const MODEL_CLASSES = ["Sequential", "Model", "Functional"];

/** Prefixes every layer name of a model config (nested models too), and the references to them. */
function prefixNames(config: ModelConfig, prefix: string): void {
  const renamed = new Map<string, string>();
  for (const l of config.layers) {
    const name = prefix + l.config.name;
    renamed.set(l.config.name, name);
    l.config.name = name;
    if (l.name !== undefined) l.name = name;
    if (MODEL_CLASSES.includes(l.class_name)) {
      prefixNames(l.config as unknown as ModelConfig, prefix);
      l.config.name = name;
    }
  }
  const ref = (r: unknown) =>
    Array.isArray(r) && typeof r[0] === "string" ? [renamed.get(r[0]) ?? r[0], ...r.slice(1)] : r;
  for (const l of config.layers) {
    if (l.inbound_nodes) {
      l.inbound_nodes = l.inbound_nodes.map((node) => node.map(ref)) as unknown[][][];
    }
  }
  if (config.input_layers) config.input_layers = config.input_layers.map(ref) as unknown[][];
  if (config.output_layers) config.output_layers = config.output_layers.map(ref) as unknown[][];
}

/**
 * Ends a member's config at its logits: a final softmax layer is dropped (the
 * layer before it is the output), a softmax fused into the last layer becomes
 * linear.
 * @throws {RangeError} for a sigmoid head or several outputs.
 */
function cutAtLogits(config: ModelConfig, sequential: boolean, index: number): void {
  const outs = config.output_layers;
  if (!sequential && outs && outs.length !== 1) {
    throw new RangeError(
      `Ensemble member ${index} has ${outs.length} outputs: give single-output classifiers`,
    );
  }
  const lastName = sequential ? config.layers.at(-1)!.config.name : String(outs![0][0]);
  const last = config.layers.find((l) => l.config.name === lastName)!;
  const activation = last.config.activation;
  if (activation === "sigmoid") {
    throw new RangeError(
      `Ensemble member ${index} ends in a sigmoid; ensembles average softmax classifiers: ` +
        "give members ending in a softmax or in linear logits",
    );
  }
  if (activation !== "softmax") return;
  const standalone = last.class_name === "Activation" || last.class_name === "Softmax";
  if (!standalone) {
    last.config.activation = "linear";
    return;
  }
  if (sequential) {
    config.layers = config.layers.slice(0, -1);
    return;
  }
  const inbound = last.inbound_nodes?.[0]?.[0] as unknown[] | undefined;
  if (!inbound) throw new RangeError(`Ensemble member ${index}: its softmax has no input`);
  config.output_layers = [inbound.slice(0, 3)];
  config.layers = config.layers.filter((l) => l !== last);
}

/**
 * A copy of a member that outputs its logits, its layers renamed `m<i>_<name>`,
 * the model named `member<i>`, its weights copied.
 */
async function memberLogits(member: tf.LayersModel, index: number): Promise<tf.LayersModel> {
  const json = member.toJSON(null, false) as unknown as {
    class_name: string;
    config: ModelConfig;
  };
  const topology = structuredClone(json);
  const sequential = topology.class_name === "Sequential";
  prefixNames(topology.config, `m${index}_`);
  cutAtLogits(topology.config, sequential, index);
  topology.config.name = `member${index}`;
  const copy = await tf.models.modelFromJSON({
    modelTopology: topology as unknown as tf.io.ModelJSON["modelTopology"],
  });
  copy.setWeights(member.getWeights());
  return copy;
}

/**
 * One model averaging the class probabilities of several classifiers. The
 * members are copied (the caller keeps and frees its own); each must take the
 * same input shape and score the same number of classes, ending in a softmax
 * or in linear logits.
 *
 * @param members The classifiers.
 * @param options The model's name.
 * @returns A functional LayersModel: `image` -> `member0..` -> `logits`
 *   (log of the averaged probabilities) -> `probs` (their average).
 * @throws {RangeError} for no members, or members whose inputs or classes differ.
 */
export async function ensembleModel(
  members: readonly tf.LayersModel[],
  options: EnsembleOptions = {},
): Promise<tf.LayersModel> {
  if (members.length === 0) throw new RangeError("An ensemble needs at least one member");
  const shape = members[0].inputs[0].shape.slice(1);
  const classes = members[0].outputs[0].shape.at(-1);
  for (const [i, m] of members.entries()) {
    if (m.inputs.length !== 1 || m.inputs[0].shape.slice(1).join() !== shape.join()) {
      throw new RangeError(
        `Ensemble member ${i} takes [${m.inputs.map((t) => t.shape.slice(1))}] but member 0 ` +
          `takes [${shape}]: give members of one input shape`,
      );
    }
    if (m.outputs[0].shape.at(-1) !== classes) {
      throw new RangeError(
        `Ensemble member ${i} scores ${m.outputs[0].shape.at(-1)} classes but member 0 ` +
          `scores ${classes}: give members of one set of classes`,
      );
    }
  }
  const copies: tf.LayersModel[] = [];
  try {
    for (const [i, m] of members.entries()) copies.push(await memberLogits(m, i));
    const input = tf.input({ shape: shape as number[], name: "image" });
    const logits = copies.map((c) => c.apply(input) as tf.SymbolicTensor);
    const mean = new MeanProbabilityLogits({ name: "logits" }).apply(logits) as tf.SymbolicTensor;
    const probs = tf.layers.activation({ activation: "softmax", name: "probs" })
      .apply(mean) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: probs, name: options.name ?? "ensemble" });
  } catch (err) {
    for (const c of copies) c.dispose();
    throw err;
  }
}

/**
 * An ensemble as a {@linkcode Net}: {@linkcode ensembleModel} with a sidecar
 * naming its `logits` and `probs` layers.
 *
 * @param members The classifiers.
 * @param sidecar Input contract and labels (the logits and probs layers are set).
 * @returns The Net (free it with `net.dispose()`; the members stay the caller's).
 */
export async function ensembleNet(
  members: readonly tf.LayersModel[],
  sidecar: Sidecar = {},
): Promise<Net> {
  const model = await ensembleModel(members);
  try {
    return Net.fromModel(
      model,
      { name: `ensemble of ${members.length}`, ...sidecar, logits: "logits", probs: "probs" },
      "memory (ensemble)",
    );
  } catch (err) {
    model.dispose();
    throw err;
  }
}
