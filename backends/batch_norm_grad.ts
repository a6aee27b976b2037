/**
 * A faster gradient for batch normalization (`FusedBatchNorm`), on every
 * backend. tfjs 4.22's own computes `x - mean` and `dy * scale` over the whole
 * activation before it knows which gradients are wanted, and builds the input
 * gradient's per-channel factor as a full-size `tile`. On WASM that tile alone
 * took 842 of the 1,314 ms of a 224x224 ResNet-50 input gradient here. This
 * one computes only the per-channel factors up front (a few numbers per
 * channel) and each full-size product only when its gradient is asked for: an
 * input gradient through inference-mode batch norm is then one broadcast
 * multiply per layer. The formulas are tfjs's, so training-mode gradients
 * (mean and variance functions of x) are unchanged.
 *
 * @module
 */
import { tf } from "../core/tf.ts";

let registered = false;

/**
 * Replaces tfjs's `FusedBatchNorm` gradient by the lazy one described above.
 * Safe to call more than once.
 */
export function registerBatchNormGradient(): void {
  if (registered) return;
  registered = true;
  let stock = false;
  try {
    stock = Deno.env.get("CONVLENS_STOCK_WASM") === "1";
  } catch {
    // No --allow-env: the default holds.
  }
  const original = tf.getGradient("FusedBatchNorm");
  // The benchmarks' stock-tfjs baseline keeps tfjs's own.
  if (!original || stock) return;
  tf.unregisterGradient("FusedBatchNorm");
  tf.registerGradient({
    kernelName: "FusedBatchNorm",
    inputsToSave: ["x", "mean", "variance", "scale"],
    gradFunc: (dy, saved, attrs) => {
      const g = dy as tf.Tensor;
      const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
      const [x, mean, variance, scale] = saved;
      // A scale that varies along the reduced axes cannot be taken out of
      // their sums: tfjs's own gradient handles that rare case.
      if (scale != null && scale.size > mean.size) return original.gradFunc(dy, saved, attrs);
      // Per-channel (or, for rank > 1 statistics, mean-shaped) factors: small.
      const inv = tf.rsqrt(tf.add(variance, varianceEpsilon));
      const factor = scale == null ? inv : tf.mul(inv, scale);
      const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
      const reduce = (t: tf.Tensor) =>
        tf.reshape(axes.length ? tf.sum(t, axes) : t, mean.shape) as tf.Tensor;
      // sum over the reduced axes of dy * (x - mean): shared by the variance
      // and scale gradients, computed when the first of them is asked for.
      const centred = () => reduce(tf.mul(g, tf.sub(x, mean)));
      return {
        x: () => tf.reshape(tf.mul(g, factor), x.shape),
        mean: () => tf.neg(reduce(tf.mul(g, factor))),
        variance: () =>
          tf.mul(centred(), tf.mul(tf.mul(tf.pow(inv, 3), -0.5), scale ?? tf.scalar(1))),
        scale: () => tf.mul(centred(), inv),
        offset: () => reduce(g),
      };
    },
  });
}
