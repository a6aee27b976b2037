/**
 * Elementwise gradients without wasted passes.
 *
 * The gradient of `Identity` (every `clone`, every layer that hands its input
 * on) is, in tfjs 4.22, `cast(dy, "float32")`, which on WASM copies dy even
 * when it is float32 already; here it is a clone, which shares dy's data. This
 * one holds on every backend.
 *
 * On WASM, the clip gradient is one pass over the heap.
 * tfjs 4.22 builds the gradient of `clipByValue` (the second half of every
 * ReLU6 of a MobileNet, as tfjs-layers writes `ReLU({maxValue})`) from four
 * kernels, two comparisons, a logical and and a select, each a full pass on one
 * thread with a boolean tensor between them. On a 224x224 MobileNetV2 input
 * gradient those four took 115 of 300 ms here. One pass that reads x and dy
 * and writes dx does the same work, with the same answer: dy where
 * `min <= x <= max` (NaN excluded), 0 elsewhere.
 *
 * Off with `CONVLENS_STOCK_WASM=1` (the stock-tfjs baseline of the benchmarks).
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import type { KernelArgs, TensorInfo } from "./kernel_types.ts";

/** convlens's own kernel: the clip gradient in one pass. */
export const CLIP_GRAD_KERNEL = "ConvlensClipGrad";

let registered = false;

function clipGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, x } = inputs;
  const lo = attrs.clipValueMin as number;
  const hi = attrs.clipValueMax as number;
  const out = backend.makeOutput(x.shape.slice(), "float32");
  const d = backend.typedArrayFromHeap(dy);
  const v = backend.typedArrayFromHeap(x);
  const o = backend.typedArrayFromHeap(out);
  for (let i = 0; i < o.length; i++) {
    const xi = v[i];
    o[i] = xi >= lo && xi <= hi ? d[i] : 0;
  }
  return out;
}

/**
 * Registers the one-pass clip gradient on wasm (the stock gradient runs on
 * other backends and for other dtypes). Safe to call more than once.
 */
export function registerElementwiseGradients(): void {
  if (registered) return;
  registered = true;
  let off = false;
  try {
    off = Deno.env.get("CONVLENS_STOCK_WASM") === "1";
  } catch {
    // No --allow-env: the default holds.
  }
  const identity = tf.getGradient("Identity");
  if (identity && !off) {
    tf.unregisterGradient("Identity");
    tf.registerGradient({
      ...identity,
      gradFunc: (dy, saved, attrs) => {
        const g = dy as tf.Tensor;
        return g.dtype === "float32"
          ? {
            x: () => {
              const dx = tf.clone(g);
              // Read here only: freed now rather than when the backward pass ends.
              g.dispose();
              return dx;
            },
          }
          : identity.gradFunc(dy, saved, attrs);
      },
    });
  }
  const original = tf.getGradient("ClipByValue");
  if (off || !original) return;
  tf.registerKernel({
    kernelName: CLIP_GRAD_KERNEL,
    backendName: "wasm",
    kernelFunc: clipGrad as unknown as tf.KernelFunc,
  });
  tf.unregisterGradient("ClipByValue");
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const g = dy as tf.Tensor;
      const x = saved[0];
      if (tf.getBackend() !== "wasm" || g.dtype !== "float32" || x.dtype !== "float32") {
        return original.gradFunc(dy, saved, attrs);
      }
      return {
        x: () => {
          const dx = tf.engine().runKernel(CLIP_GRAD_KERNEL, { dy: g, x }, attrs) as tf.Tensor;
          g.dispose();
          return dx;
        },
      };
    },
  });
  // Its own gradient, for second derivatives: linear in dy with the same mask.
  tf.registerGradient({
    kernelName: CLIP_GRAD_KERNEL,
    inputsToSave: ["x"],
    gradFunc: (ddx, saved, attrs) => ({
      dy: () =>
        tf.engine().runKernel(
          CLIP_GRAD_KERNEL,
          { dy: ddx as tf.Tensor, x: saved[0] },
          attrs,
        ) as tf.Tensor,
      x: () => tf.zerosLike(saved[0]),
    }),
  });
}
