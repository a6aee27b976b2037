/**
 * Private helpers of the fool family: gradients and predictions in display-pixel
 * space [0, 1] (so that every epsilon is in pixel units whatever the model's
 * normalization), per-image norms, the 8-bit PNG round trip, and the figures the
 * attacks share.
 *
 * @module
 */
import { batchSizeFor } from "../../core/memory_budget.ts";
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { gradient } from "../../core/gradients.ts";
import type { Objective } from "../../core/objective.ts";
import { decodeImage, encodePng, rawToTensor, tensorToRaw } from "../../core/images/codecs.ts";
import type { Random } from "../../core/random.ts";
import { classScore } from "../optimize/objectives.ts";

/**
 * The objective `w_i * log softmax(logits)_i[y_i]` of image i (its gradient is of
 * the sum over i): ascending it with `w_i = +1` pulls image i toward class `y_i`
 * (targeted), with `w_i = -1` pushes it away (untargeted: the cross-entropy of the
 * true class goes up).
 */
export function logProbObjective(
  classes: readonly number[],
  weights: readonly number[],
  k: number,
) {
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= k) {
      throw new RangeError(`Class ${c} is out of range: the model has ${k} classes`);
    }
  }
  const w = tf.tensor1d([...weights]);
  const logProb = classScore([...classes], "logprob");
  const objective: Objective = {
    name: `weightedLogProbability(${classes.join(",")})`,
    logits: true,
    perImage: (input) => tf.mul(logProb.perImage(input), w) as tf.Tensor1D,
  };
  return { objective, dispose: () => w.dispose() };
}

/** d objective / d pixels: the gradient in model space times the chain rule of `fromPixels`. */
export function pixelGradient(net: Net, pixels: tf.Tensor4D, objective: Objective): tf.Tensor4D {
  const [lo, hi] = net.input.range;
  const c = net.input.channels;
  const scale = Array.from(
    { length: c },
    (_, i) => (hi - lo) / net.input.std[i % net.input.std.length],
  );
  const x = net.fromPixels(pixels);
  try {
    const { grad, value } = gradient(net, x, objective);
    value.dispose();
    const out = tf.tidy(() => grad.mul(tf.tensor1d(scale))) as tf.Tensor4D;
    grad.dispose();
    return out;
  } finally {
    x.dispose();
  }
}

/**
 * The sign of each entry, from exact comparisons: tfjs-backend-wasm 4.22's `Sign`
 * returns 0 for tiny values (4e-9 gives 0), which silently zeroes FGSM and PGD
 * steps on images the net is very sure of.
 */
export function signOf(t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.greater(t, 0).toFloat(), tf.less(t, 0).toFloat()));
}

/** Class probabilities of display pixels, in chunks (by default what fits the memory budget). */
export function pixelProbabilities(
  net: Net,
  pixels: tf.Tensor4D,
  batchSize: number = batchSizeFor(net, 256, { pass: "forward" }),
): tf.Tensor2D {
  const x = net.fromPixels(pixels) as tf.Tensor4D;
  try {
    return net.predictInBatches(x, batchSize);
  } finally {
    x.dispose();
  }
}

/** Rows of a `[n, k]` tensor as arrays. */
export async function rows(t: tf.Tensor2D): Promise<number[][]> {
  return (await t.array()) as number[][];
}

/** Index of the largest entry. */
export function argmax(v: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Per-image L0 (entries changed by more than 1e-6), L2 and L-inf norms of `[n, ...]`. */
export async function norms(r: tf.Tensor): Promise<{ l0: number[]; l2: number[]; linf: number[] }> {
  const [l0, l2, linf] = tf.tidy(() => {
    const flat = r.reshape([r.shape[0], -1]);
    const abs = flat.abs();
    return [
      abs.greater(1e-6).sum(1),
      flat.square().sum(1).sqrt(),
      abs.max(1),
    ];
  });
  const out = {
    l0: Array.from(await l0.data(), Number),
    l2: Array.from(await l2.data(), Number),
    linf: Array.from(await linf.data(), Number),
  };
  tf.dispose([l0, l2, linf]);
  return out;
}

/**
 * Saves each image as an 8-bit PNG (real bytes, `encodePng`) and reads it back
 * (`decodeImage`): what a user who saved the adversarial image would feed the net.
 */
export async function pngRoundTrip(pixels: tf.Tensor4D): Promise<tf.Tensor4D> {
  const n = pixels.shape[0];
  const c = pixels.shape[3] === 1 ? 1 : 3;
  const back: tf.Tensor3D[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const one = tf.tidy(() =>
        pixels.slice([i, 0, 0, 0], [1, -1, -1, -1]).squeeze([0])
      ) as tf.Tensor3D;
      const raw = await tensorToRaw(one);
      one.dispose();
      const png = await encodePng(raw);
      back.push(rawToTensor(await decodeImage(png, `adversarial image ${i}`), c));
    }
    return tf.stack(back) as tf.Tensor4D;
  } finally {
    tf.dispose(back);
  }
}

/** Uniform noise in [-a, a] as a tensor of `shape`, from a seeded generator (same on every backend). */
export function uniformNoise(rng: Random, shape: number[], a: number): tf.Tensor {
  const size = shape.reduce((x, y) => x * y, 1);
  const buf = new Float32Array(size);
  for (let i = 0; i < size; i++) buf[i] = (2 * rng.next() - 1) * a;
  return tf.tensor(buf, shape);
}

/** Standard normal noise as a tensor of `shape`, from a seeded generator. */
export function normalNoise(rng: Random, shape: number[], sigma = 1): tf.Tensor {
  const size = shape.reduce((x, y) => x * y, 1);
  const buf = new Float32Array(size);
  for (let i = 0; i < size; i++) buf[i] = rng.normal() * sigma;
  return tf.tensor(buf, shape);
}

/** Per-image L2 norm of `[n, ...]`, shaped `[n, 1, 1, 1]` for broadcasting, never below `floor`. */
export function l2PerImage(t: tf.Tensor, floor = 1e-12): tf.Tensor {
  return tf.tidy(() =>
    t.reshape([t.shape[0], -1]).square().sum(1).sqrt().maximum(floor).reshape([-1, 1, 1, 1])
  );
}

/** Mean of a list (0 for an empty one). */
export function mean(v: readonly number[]): number {
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
}

/** Percentage with one decimal, for labels. */
export function pct(p: number): string {
  return `${(100 * p).toFixed(p > 0.999 && p < 1 ? 2 : 1)}%`;
}

/** Throws if the model is not a classifier the attacks can work with. */
export function checkClassifier(net: Net, what: string): void {
  const last = net.layers[net.layers.length - 1];
  if (last.outputShape.length !== 1 || net.numClasses < 2) {
    throw new RangeError(
      `${what}: the model's output has shape [${last.outputShape}]; ` +
        "attacks need a classifier with one score per class (a [batch, classes] output)",
    );
  }
}
