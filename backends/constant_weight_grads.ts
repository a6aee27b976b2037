/**
 * Filter gradients that nobody reads, not computed. tfjs's fused convolutions
 * (every conv layer of a LayersModel, every `_FusedConv2D` of a converted
 * GraphModel) compute their filter and bias gradients eagerly whenever a
 * gradient passes through them, though an input gradient throws them away:
 * about a third of a ResNet-50 input gradient. While the core holds the weights
 * constant (`holdingWeightsConstant` in `core/folded_layers.ts`, around every
 * input and activation gradient convlens takes), the filter-gradient kernels
 * of every backend answer zeros of the right shape at once. Outside that scope
 * they run as before, so training is untouched.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { weightsHeldConstant } from "../core/folded_layers.ts";
import type { KernelArgs, TensorInfo, WasmBackend } from "./kernel_types.ts";

/** The kernels that compute only a gradient with respect to weights. */
export const WEIGHT_GRADIENT_KERNELS = [
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropFilter",
] as const;

let registered = false;

/** Zeros of `shape` made directly by the backend. */
function zeros(backend: unknown, shape: number[]): TensorInfo {
  const size = shape.reduce((a, b) => a * b, 1);
  if (tf.getBackend() === "wasm") {
    const wasm = backend as WasmBackend;
    const out = wasm.makeOutput(shape, "float32");
    wasm.typedArrayFromHeap(out).fill(0);
    return out;
  }
  // deno-lint-ignore no-explicit-any
  return (backend as any).makeTensorInfo(shape, "float32", new Float32Array(size));
}

/**
 * Wraps the weight-gradient kernels of every registered backend (call it after
 * the other kernels are registered). Safe to call more than once.
 */
export function registerConstantWeightGradients(): void {
  if (registered) return;
  registered = true;
  for (const backendName of ["wasm", "cpu", "webgpu"]) {
    for (const name of WEIGHT_GRADIENT_KERNELS) {
      const previous = tf.getKernel(name, backendName);
      if (!previous) continue;
      tf.unregisterKernel(name, backendName);
      tf.registerKernel({
        ...previous,
        kernelFunc: ((args: KernelArgs) =>
          weightsHeldConstant()
            ? zeros(args.backend, args.attrs.filterShape as number[])
            : (previous.kernelFunc as unknown as (a: KernelArgs) => TensorInfo)(
              args,
            )) as unknown as tf.KernelFunc,
      });
    }
  }
}
