/**
 * Linear probes: the lecture's "linear classifier on top layer" and "linear
 * classifier from different stages". A probe reads a layer's features (a
 * {@linkcode DataSource} from `features.ts`), standardizes each feature with
 * the training set's mean and standard deviation (features of different
 * layers differ in scale by orders of magnitude; standardized, one learning
 * rate and one L2 strength serve every layer), and fits a linear map
 * `W x + b` by full-batch Adam from zero weights (the problem is convex, so
 * the start does not matter and the run is the same every time):
 *
 * - `softmax`: softmax regression (multinomial logistic regression), mean
 *   cross-entropy plus `l2 / 2 * |W|^2`;
 * - `svm`: a linear SVM with the Crammer-Singer multi-class hinge, mean of
 *   `max(0, 1 + max_{j != y} s_j - s_y)` plus the same L2 term (DeCAF's and
 *   Razavian et al.'s off-the-shelf classifiers were linear SVMs).
 *
 * @example A probe separates two clusters
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { tensorSource } from "../../../core/data/source.ts";
 * import { probeAccuracy, trainProbe } from "./probes.ts";
 * const x = tf.tensor4d([0, 0.1, 0.2, 5, 5.1, 5.2], [6, 1, 1, 1]);
 * const data = tensorSource(x, [0, 0, 0, 1, 1, 1]);
 * const probe = await trainProbe(data, { kind: "svm", steps: 100 });
 * if (await probeAccuracy(probe, data) !== 1) throw new Error("separable");
 * x.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { DataSource } from "../../../core/data/source.ts";
import { makeOptimizer } from "../../../core/train/optimizers.ts";

/** The loss a probe minimizes. */
export type ProbeKind = "softmax" | "svm";

/** The probe kinds. */
export const PROBE_KINDS: readonly ProbeKind[] = ["softmax", "svm"];

/** Options of {@linkcode trainProbe}. */
export interface ProbeOptions {
  /** Softmax regression or a Crammer-Singer linear SVM. @default "softmax" */
  kind?: ProbeKind;
  /** L2 strength on the weights (not the bias). @default 0.001 */
  l2?: number;
  /** Full-batch Adam steps. @default 300 */
  steps?: number;
  /** Adam learning rate. @default 0.02 */
  learningRate?: number;
}

/** A trained linear probe: standardization, then `W x + b`. */
export interface LinearProbe {
  /** Its loss. */
  kind: ProbeKind;
  /** Features it reads. */
  dims: number;
  /** Classes it scores. */
  classes: number;
  /** Training mean of each feature. */
  mean: Float32Array;
  /** Training standard deviation of each feature (1 where the feature is constant). */
  std: Float32Array;
  /** `[dims, classes]` weights, row-major, on standardized features. */
  weights: Float32Array;
  /** `[classes]` biases. */
  bias: Float32Array;
  /** Accuracy on the training features. */
  trainAccuracy: number;
  /** The training loss at the last step (data term plus L2). */
  loss: number;
}

/**
 * Mean softmax cross-entropy of scores `[n, k]` against labels `[n]`.
 *
 * @param scores Class scores.
 * @param y Class indices (int32).
 * @returns The mean loss.
 */
export function softmaxLoss(scores: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(y, scores.shape[1]);
    return tf.losses.softmaxCrossEntropy(onehot, scores) as tf.Scalar;
  });
}

/**
 * Mean Crammer-Singer multi-class hinge: `max(0, 1 + max_{j != y} s_j - s_y)`
 * per example. Its subgradient for an example inside the margin is +1 at the
 * strongest wrong class and -1 at the true class (0 elsewhere, and 0 for an
 * example outside the margin), over n.
 *
 * @param scores Class scores `[n, k]`, k >= 2.
 * @param y Class indices (int32).
 * @returns The mean loss.
 */
export function hingeLoss(scores: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(y, scores.shape[1]).toFloat();
    const right = scores.mul(onehot).sum(1);
    // The true class is pushed far below so that the max picks a wrong one.
    const wrong = scores.sub(onehot.mul(1e9)).max(1);
    return tf.relu(wrong.sub(right).add(1)).mean() as tf.Scalar;
  });
}

/**
 * Reads a whole source as `[n, d]` features and `[n]` labels.
 *
 * @param source The source (features or images).
 * @returns Both tensors (the caller disposes of them).
 */
export async function readFeatures(
  source: DataSource,
): Promise<{ x: tf.Tensor2D; y: tf.Tensor1D }> {
  const { x, y } = await source.batch(Array.from({ length: source.size }, (_, i) => i));
  const flat = x.reshape([source.size, -1]) as tf.Tensor2D;
  x.dispose();
  return { x: flat, y };
}

function checkOptions(o: ProbeOptions): Required<ProbeOptions> {
  const kind = o.kind ?? "softmax";
  if (!PROBE_KINDS.includes(kind)) {
    throw new RangeError(`Unknown probe "${kind}": give one of ${PROBE_KINDS.join(", ")}`);
  }
  const l2 = o.l2 ?? 1e-3, steps = o.steps ?? 300, lr = o.learningRate ?? 0.02;
  if (!(l2 >= 0 && Number.isFinite(l2))) {
    throw new RangeError(`l2 ${l2} is invalid: give a number >= 0`);
  }
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new RangeError(`steps ${steps} is invalid: give a positive integer`);
  }
  if (!(lr > 0 && Number.isFinite(lr))) {
    throw new RangeError(`learningRate ${lr} is invalid: give a positive number`);
  }
  return { kind, l2, steps, learningRate: lr };
}

/**
 * Trains a linear probe on `train`.
 *
 * @param train Features (or any source; images are flattened).
 * @param options Kind, L2 strength, steps, learning rate.
 * @returns The probe (plain arrays: it holds no tensors).
 * @throws {RangeError} for bad options, or fewer than two classes or examples.
 */
export async function trainProbe(
  train: DataSource,
  options: ProbeOptions = {},
): Promise<LinearProbe> {
  const o = checkOptions(options);
  const k = train.classes.length;
  if (k < 2 || train.size < 2) {
    throw new RangeError(
      `${train.name}: a probe needs at least two classes and two examples, got ` +
        `${k} classes and ${train.size} examples`,
    );
  }
  const { x, y } = await readFeatures(train);
  const d = x.shape[1];
  const [mean, std] = tf.tidy(() => {
    const m = x.mean(0);
    const s = x.sub(m).square().mean(0).sqrt();
    return [m, tf.where(s.greater(1e-6), s, tf.onesLike(s))];
  });
  const z = tf.tidy(() => x.sub(mean).div(std)) as tf.Tensor2D;
  x.dispose();
  // A variable keeps its own copy; the zeros it starts from are freed at once.
  const [w, b] = tf.tidy(() => [tf.variable(tf.zeros([d, k])), tf.variable(tf.zeros([k]))]);
  const optimizer = makeOptimizer({ name: "adam" });
  const lossOf = o.kind === "svm" ? hingeLoss : softmaxLoss;
  let last = NaN;
  try {
    for (let step = 0; step < o.steps; step++) {
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const s = z.matMul(w).add(b) as tf.Tensor2D;
          return lossOf(s, y).add(w.square().sum().mul(o.l2 / 2)) as tf.Scalar;
        }), [w, b]);
      optimizer.step([[w, grads[w.name]], [b, grads[b.name]]], o.learningRate);
      if (step === o.steps - 1) last = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
    }
    const right = tf.tidy(() => z.matMul(w).add(b).argMax(1).equal(y).sum());
    const trainAccuracy = (await right.data())[0] / train.size;
    right.dispose();
    return {
      kind: o.kind,
      dims: d,
      classes: k,
      mean: await mean.data() as Float32Array,
      std: await std.data() as Float32Array,
      weights: await w.data() as Float32Array,
      bias: await b.data() as Float32Array,
      trainAccuracy,
      loss: last,
    };
  } finally {
    optimizer.dispose();
    tf.dispose([w, b, z, y, mean, std]);
  }
}

/**
 * The probe's class scores for features `[n, d]`.
 *
 * @param probe The probe.
 * @param x Features, as the probe's training source held them, flattened.
 * @returns Scores `[n, classes]` (the caller owns them).
 * @throws {RangeError} when the features are not the probe's size.
 */
export function probeScores(probe: LinearProbe, x: tf.Tensor2D): tf.Tensor2D {
  if (x.shape[1] !== probe.dims) {
    throw new RangeError(
      `These features have ${x.shape[1]} values each, the probe reads ${probe.dims}; ` +
        "give features of the layer (and pooling) it was trained on",
    );
  }
  return tf.tidy(() =>
    x.sub(tf.tensor1d(probe.mean)).div(tf.tensor1d(probe.std))
      .matMul(tf.tensor2d(probe.weights, [probe.dims, probe.classes]))
      .add(tf.tensor1d(probe.bias)) as tf.Tensor2D
  );
}

/**
 * The probe's accuracy on a source of the same features.
 *
 * @param probe The probe.
 * @param source Features of the same layer and pooling, labelled.
 * @returns The share classified right.
 */
export async function probeAccuracy(probe: LinearProbe, source: DataSource): Promise<number> {
  if (source.size === 0) return NaN;
  const { x, y } = await readFeatures(source);
  try {
    const right = tf.tidy(() => probeScores(probe, x).argMax(1).equal(y).sum());
    const n = (await right.data())[0];
    right.dispose();
    return n / source.size;
  } finally {
    tf.dispose([x, y]);
  }
}

/** One layer's probe accuracies. */
export interface LayerProbeRow {
  /** The layer. */
  layer: string;
  /** Its depth: position among the probed layers, from 0. */
  depth: number;
  /** Features per example. */
  dims: number;
  /** Validation accuracy of softmax regression. */
  softmax: number;
  /** Validation accuracy of the linear SVM. */
  svm: number;
  /** Training accuracy of softmax regression. */
  softmaxTrain: number;
  /** Training accuracy of the linear SVM. */
  svmTrain: number;
}

/** Options of {@linkcode probeEveryLayer}: one probe setting for both kinds. */
export type ProbeEveryLayerOptions = Omit<ProbeOptions, "kind">;

/**
 * Trains both probes on each layer's training features and measures them on
 * the validation features.
 *
 * @param train Training features by layer (from `layerFeatures`).
 * @param validation Validation features of the same layers.
 * @param options L2 strength, steps, learning rate.
 * @param onLayer Called after each layer with the layers done and their number.
 * @returns One row per layer, in the order of `train`.
 * @throws {RangeError} when a layer lacks validation features.
 */
export async function probeEveryLayer(
  train: ReadonlyMap<string, DataSource>,
  validation: ReadonlyMap<string, DataSource>,
  options: ProbeEveryLayerOptions = {},
  onLayer?: (done: number, total: number) => void,
): Promise<LayerProbeRow[]> {
  const rows: LayerProbeRow[] = [];
  let depth = 0;
  for (const [layer, source] of train) {
    const val = validation.get(layer);
    if (!val) throw new RangeError(`No validation features of layer "${layer}"`);
    const soft = await trainProbe(source, { ...options, kind: "softmax" });
    const svm = await trainProbe(source, { ...options, kind: "svm" });
    rows.push({
      layer,
      depth: depth++,
      dims: soft.dims,
      softmax: await probeAccuracy(soft, val),
      svm: await probeAccuracy(svm, val),
      softmaxTrain: soft.trainAccuracy,
      svmTrain: svm.trainAccuracy,
    });
    onLayer?.(depth, train.size);
  }
  return rows;
}

/**
 * The layer whose better probe scores highest (the shallower on a tie).
 *
 * @param rows Rows from {@linkcode probeEveryLayer}.
 * @returns The best row.
 * @throws {RangeError} for no rows.
 */
export function bestProbeRow(rows: readonly LayerProbeRow[]): LayerProbeRow {
  if (rows.length === 0) throw new RangeError("No probe rows: probe at least one layer");
  const score = (r: LayerProbeRow) => Math.max(r.softmax, r.svm);
  return rows.reduce((a, r) => score(r) > score(a) ? r : a);
}

/**
 * The accuracy of several probes voting together: each probe's softmax
 * probabilities on its own layer's features, averaged, then the argmax
 * (the lecture's "linear classifiers from different stages", all of them at
 * once; an ensemble of per-layer probes, as in Alain & Bengio's probes read
 * side by side).
 *
 * @param probes The probes, one per layer.
 * @param sources Each probe's features of the same examples, in the same order.
 * @returns The share the averaged probabilities classify right.
 * @throws {RangeError} for no probes, a count mismatch, or sources of different sizes.
 */
export async function probeEnsembleAccuracy(
  probes: readonly LinearProbe[],
  sources: readonly DataSource[],
): Promise<number> {
  if (probes.length === 0 || probes.length !== sources.length) {
    throw new RangeError(
      `Give one feature source per probe (got ${probes.length} probes and ${sources.length} ` +
        "sources), at least one of each",
    );
  }
  const n = sources[0].size;
  if (sources.some((s) => s.size !== n)) {
    throw new RangeError(
      "The feature sources hold different numbers of examples: give the same examples",
    );
  }
  if (n === 0) return NaN;
  let sum: tf.Tensor2D | undefined;
  let labels: tf.Tensor1D | undefined;
  try {
    for (const [k, probe] of probes.entries()) {
      const { x, y } = await readFeatures(sources[k]);
      const next = tf.tidy(() => {
        const p = tf.softmax(probeScores(probe, x)) as tf.Tensor2D;
        return sum ? sum.add(p) as tf.Tensor2D : p;
      });
      x.dispose();
      sum?.dispose();
      sum = next;
      if (labels) y.dispose();
      else labels = y;
    }
    const right = tf.tidy(() => sum!.argMax(1).equal(labels!).sum());
    const count = (await right.data())[0];
    right.dispose();
    return count / n;
  } finally {
    sum?.dispose();
    labels?.dispose();
  }
}
