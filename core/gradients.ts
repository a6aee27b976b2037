/**
 * One mechanism for every gradient technique: the gradient of an objective (the
 * sum over the batch of its per-image values, see `objective.ts`) with respect to
 * the input or any layer's activation, under a chosen ReLU backward rule:
 *
 * - `plain`: dy * (x > 0), ordinary backprop (saliency, class models, DeepDream);
 * - `deconv`: relu(dy), Zeiler & Fergus's DeconvNet (max-pool switches come from
 *   the ordinary max-pool gradient, the filtering from the ordinary conv gradient);
 * - `guided`: relu(dy) * (x > 0), Springenberg et al.'s guided backprop.
 *
 * The rule is swapped in the gradient registry for the duration of one call and
 * restored afterwards, even when the call throws. Fused conv and dense ops with a
 * ReLU do not fuse while a gradient is being taken, so the rule reaches them too.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { Edit, Net } from "./net.ts";
import { holdingWeightsConstant } from "./folded_layers.ts";
import type { Objective } from "./objective.ts";

/** How the backward pass crosses a ReLU. */
export type ReluRule = "plain" | "deconv" | "guided";

/** The rules, for parameter schemas. */
export const RELU_RULES: readonly ReluRule[] = ["plain", "deconv", "guided"];

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
  x: () => tf.Tensor;
};

// The forward mask of each rectifier: where the ordinary gradient lets dy through.
const MASKS: Record<string, (x: tf.Tensor, attrs: tf.NamedAttrMap) => tf.Tensor> = {
  Relu: (x) => tf.step(x),
  Relu6: (x) => tf.mul(tf.step(x), tf.cast(tf.lessEqual(x, 6), "float32")),
  LeakyRelu: (x, attrs) => {
    const alpha = Number(attrs.alpha ?? 0.2);
    return tf.where(tf.greater(x, 0), tf.onesLike(x), tf.fill(x.shape, alpha));
  },
  Elu: (x) => tf.where(tf.greater(x, 0), tf.onesLike(x), tf.exp(x)),
};

function ruleGradient(kernel: string, rule: ReluRule): GradFunc {
  const mask = MASKS[kernel];
  return (dy, saved, attrs) => ({
    x: () => {
      // Elu saves its output y; exp(x) = y + 1 where x <= 0.
      const x = saved[0];
      const m = kernel === "Elu"
        ? tf.where(tf.greater(x, 0), tf.onesLike(x), tf.add(x, 1))
        : mask(x, attrs);
      if (rule === "deconv") return tf.relu(dy);
      if (rule === "guided") return tf.mul(tf.relu(dy), m);
      return tf.mul(dy, m);
    },
  });
}

/**
 * Runs `fn` with the ReLU backward rule set to `rule`, restoring the original
 * gradients afterwards even if `fn` throws.
 *
 * @param rule `plain`, `deconv` or `guided`.
 * @param fn A synchronous function that takes gradients (e.g. calls `tf.grad`).
 * @returns What `fn` returns.
 * @example Guided backprop through one ReLU
 * ```ts
 * import { tf } from "./tf.ts";
 * import { withReluRule } from "./gradients.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor1d([-1, 2]);
 * const g = withReluRule("guided", () => tf.grad((v: tf.Tensor) => tf.relu(v).mul(tf.tensor1d([3, -4])).sum())(x));
 * const [a, b] = await g.data();
 * if (a !== 0 || b !== 0) throw new Error("guided drops negative gradients");
 * ```
 */
export function withReluRule<T>(rule: ReluRule, fn: () => T): T {
  if (!RELU_RULES.includes(rule)) {
    throw new RangeError(`Unknown ReLU rule "${rule}": use one of ${RELU_RULES.join(", ")}`);
  }
  if (rule === "plain") return fn();
  const originals: tf.GradConfig[] = [];
  for (const kernel of Object.keys(MASKS)) {
    const original = tf.getGradient(kernel);
    if (!original) continue;
    originals.push(original);
    tf.unregisterGradient(kernel);
    tf.registerGradient({
      kernelName: kernel,
      inputsToSave: original.inputsToSave,
      outputsToSave: original.outputsToSave,
      gradFunc: ruleGradient(kernel, rule) as unknown as tf.GradConfig["gradFunc"],
    });
  }
  try {
    return fn();
  } finally {
    for (const original of originals) {
      tf.unregisterGradient(original.kernelName);
      tf.registerGradient(original);
    }
  }
}

/** Options of {@linkcode gradient}. */
export interface GradientOptions {
  /** ReLU backward rule. @default "plain" */
  rule?: ReluRule;
  /** What to differentiate with respect to: `"input"` or a layer name. @default "input" */
  wrt?: string;
  /** Edits applied during the forward pass (e.g. keep one neuron). @default {} */
  edits?: Readonly<Record<string, Edit>>;
  /**
   * Also return the activation at `wrt` (a layer), which the gradient computes
   * on its way (Grad-CAM weighs it by the gradient). @default false
   */
  activation?: boolean;
}

/** The gradient and the objective's value. */
export interface GradientResult {
  /** d objective / d wrt, shaped like the input (or the layer's activation). */
  grad: tf.Tensor;
  /** The objective's value: the sum of its per-image values. */
  value: tf.Scalar;
  /** The activation at `wrt`, when asked for with a layer as `wrt`. */
  activation?: tf.Tensor;
}

/**
 * The gradient of an objective with respect to the input or a layer's activation:
 * of the sum of its per-image values, so that each image's gradient is its own.
 * The objective sees the batch as both its `input` and its `image`.
 *
 * @param net The model.
 * @param x A batch in model input space.
 * @param objective What to differentiate; it is checked against the model first.
 * @param options Rule, what to differentiate with respect to, edits.
 * @returns The gradient and the value; the caller owns both.
 * @throws {RangeError} for an objective that does not fit the model, an unknown
 *   layer, or a backward pass through a dilated convolution.
 * @example The gradient of one logit, summed over a batch of two
 * ```ts
 * import { tf } from "./tf.ts";
 * import { Net } from "./net.ts";
 * import { gradient } from "./gradients.ts";
 * await tf.setBackend("cpu");
 * const model = tf.sequential({ layers: [
 *   tf.layers.flatten({ inputShape: [2, 2, 1], name: "f" }),
 *   tf.layers.dense({ units: 3, name: "d" }),
 * ] });
 * const net = Net.fromModel(model);
 * const x = tf.ones([2, 2, 2, 1]);
 * const { grad, value } = gradient(net, x, {
 *   name: "logit1",
 *   logits: true,
 *   perImage: ({ result }) => result.logits!.slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D,
 * });
 * if (grad.shape.join() !== "2,2,2,1" || value.rank !== 0) throw new Error("shapes");
 * tf.dispose([x, grad, value]);
 * net.dispose();
 * ```
 */
export function gradient(
  net: Net,
  x: tf.Tensor,
  objective: Objective,
  options: GradientOptions = {},
): GradientResult {
  const rule = options.rule ?? "plain";
  const wrt = options.wrt ?? "input";
  const edits = options.edits ?? {};
  net.checkInput(x);
  if (wrt !== "input") net.layer(wrt);
  objective.check?.(net);
  const taps = objective.taps ?? [];
  const run = (input: tf.Tensor, feed: Record<string, tf.Tensor>): tf.Scalar => {
    const result = net.forward(input, {
      taps,
      logits: objective.logits ?? false,
      // A fed activation was computed with the edits already.
      edits: Object.fromEntries(
        Object.entries(edits).filter(([k]) => !(net.canonicalLayer(k) in feed)),
      ),
      feed,
      stopAtTaps: !objective.output,
      // Input and activation gradients only: the weights are constants.
      constantWeights: true,
    });
    const image = input as tf.Tensor4D;
    return tf.sum(objective.perImage({ result, input: image, image }));
  };
  // TF.js has no gradient for dilated convs and leaks its half-done tape when one
  // throws: refuse before any work when the backward pass would cross one.
  const from = wrt === "input" ? 0 : net.layers.findIndex((l) => l.name === wrt);
  const dilated = net.layers.slice(from + 1).filter((l) =>
    (l.role === "conv" || l.role === "depthwise") && (l.dilation ?? [1, 1]).some((d) => d > 1)
  );
  if (dilated.length) throw dilationError(dilated.map((l) => l.name));
  try {
    return tf.tidy(() =>
      withReluRule(rule, () =>
        holdingWeightsConstant(() => {
          if (wrt === "input") {
            const { value, grad } = tf.valueAndGrad((input: tf.Tensor) => run(input, {}))(x);
            return { value, grad };
          }
          // Differentiate with respect to an activation: compute it once, then feed it
          // back in its own place so that the graph downstream depends on the fed
          // tensor (and what only leads to it does not run again).
          const r = net.forward(x, { taps: [wrt], edits, stopAtTaps: true, constantWeights: true });
          const act = r.taps[wrt];
          const { value, grad } = tf.valueAndGrad((a: tf.Tensor) =>
            tf.tidy(() => run(x, { [net.canonicalLayer(wrt)]: a }))
          )(act);
          return options.activation ? { value, grad, activation: act } : { value, grad };
        }))
    );
  } catch (err) {
    const message = (err as Error).message ?? "";
    if (/dilation rates greater than 1/i.test(message)) throw dilationError([]);
    throw err;
  }
}

function dilationError(layers: string[]): RangeError {
  return new RangeError(
    "Gradients through dilated convolutions are not supported by TensorFlow.js 4.22" +
      (layers.length ? ` (layer ${layers.map((n) => `"${n}"`).join(", ")})` : "") +
      "; use a technique without gradients (activations, occlusion, top-patches) on this model",
  );
}
