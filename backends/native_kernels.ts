/**
 * Native kernels for the WASM backend, run by oneDNN (`onednn.ts`) on every
 * core, straight on the WASM heap: convolutions (plain, fused, depthwise) and
 * their input and filter gradients, matrix products, max-pool gradients,
 * leading-axis sums (bias gradients) and the ReLU gradient. Each replaces the
 * WASM kernel of the same name and hands every case it does not cover (NCHW,
 * other activations, PReLU, non-float32, empty tensors, shapes oneDNN
 * refuses) to that kernel.
 *
 * Off when oneDNN cannot be opened (no `--allow-ffi`, library not installed)
 * or with `CONVLENS_NATIVE=0`; `CONVLENS_STOCK_WASM=1` turns it off too.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import {
  type ConvGeometry,
  type NativeActivation,
  type NativeOp,
  type OneDnn,
  oneDnn,
} from "./onednn.ts";
import { convInfo, isChannelsLast, poolInfo, registerWasmKernels } from "./wasm_kernels.ts";
import { CLIP_GRAD_KERNEL, registerElementwiseGradients } from "./elementwise_grads.ts";
import type { Attrs, KernelArgs as Args, Ptr, TensorInfo, WasmBackend } from "./kernel_types.ts";

/** Native kernels check which optional inputs (bias, PReLU weights) are present. */
type KernelArgs = Args<TensorInfo | undefined>;
type Kernel = (args: KernelArgs) => TensorInfo;

/** What the native path is doing, for the backend's one-line announcement. */
export interface NativeStatus {
  /** Kernels replaced, or empty when off. */
  kernels: string[];
  /** oneDNN's thread count, or 0 when off. */
  threads: number;
  /** The OpenMP wait policy in force and who chose it (empty when off). */
  openmp?: string;
  /** Why it is off, when it is. */
  why: string;
  /** Calls answered natively so far, by kernel name (the rest went to WASM). */
  calls: Record<string, number>;
  /**
   * Why each kernel last handed a call to WASM, by kernel name: a geometry
   * oneDNN refused, or a buffer whose size did not match what oneDNN would
   * read or write.
   */
  refused: Record<string, string>;
}

let status: NativeStatus | undefined;
let enabled = true;
const calls: Record<string, number> = {};
const refusals: Record<string, string> = {};

/**
 * Turns the native kernels off (each call then goes to the WASM kernel it
 * replaced) or back on, for comparisons and for testing those kernels.
 */
export function useNativeKernels(on: boolean): void {
  enabled = on;
}

/** The state of the native kernels (registering them on first call). */
export function nativeStatus(): NativeStatus {
  return registerNativeKernels();
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function convGeometry(
  xShape: number[],
  filterShape: number[],
  attrs: Attrs,
  depthwise: boolean,
): ConvGeometry {
  const info = convInfo(xShape, filterShape, attrs, depthwise);
  const p = info.padInfo;
  return {
    depthwise,
    inShape: xShape,
    filterShape,
    outShape: info.outShape,
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pads: [p.top, p.bottom, p.left, p.right],
  };
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function float(...infos: (TensorInfo | undefined)[]): boolean {
  return infos.every((t) => !t || (t.dtype === "float32" && sizeOf(t.shape) > 0));
}

/** Pointer to a tensor's data in the WASM heap; taken after every allocation. */
function heap(backend: WasmBackend, info: TensorInfo): Ptr {
  const base = Deno.UnsafePointer.of(backend.wasm.HEAPU8 as unknown as BufferSource);
  return Deno.UnsafePointer.offset(base!, backend.getMemoryOffset(info.dataId));
}

/**
 * Makes a float32 output, then runs `write` with tensor pointers taken after
 * that allocation (which may grow and move the heap); frees the output if
 * `write` throws, so a failed native call leaves nothing behind.
 */
function into(
  backend: WasmBackend,
  shape: number[],
  write: (at: (t: TensorInfo) => Ptr, out: Ptr) => void,
): TensorInfo {
  const out = backend.makeOutput(shape, "float32");
  try {
    write((t) => heap(backend, t), heap(backend, out));
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
  return out;
}

/**
 * Checks, before a native call, that each buffer holds what oneDNN will touch
 * through it: `bytes[i]` against `op.spans[i]` (from its memory descriptors,
 * padding and strides included). A source may span less than its tensor (a
 * strided view reads part of it); an output must match exactly, or some of it
 * would be left unwritten. Throws, so the call goes to the WASM kernel.
 */
function guard(op: NativeOp, names: string[], bytes: number[], outputs = 1): void {
  const first = names.length - outputs;
  names.forEach((name, i) => {
    const span = op.spans[i], have = bytes[i];
    if (i < first ? span <= have : span === have) return;
    throw new Error(
      `oneDNN would ${i < first ? "read" : "write"} ${span} bytes through ${name}, ` +
        `which holds ${have} (${op.impl})`,
    );
  });
}

/** Bytes of a float32 tensor (0 when absent, as an absent bias). */
function bytesOf(t: TensorInfo | readonly number[] | undefined): number {
  if (!t) return 0;
  return 4 * sizeOf(("shape" in t ? t.shape : t) as number[]);
}

function activationOf(attrs: Attrs): NativeActivation | null {
  const a = (attrs.activation as string | undefined) ?? "linear";
  return a === "linear" || a === "relu" || a === "relu6" ? a : null;
}

/**
 * Runs `native` unless it returns null (a case it does not cover) or oneDNN
 * refuses the geometry, in which case the replaced kernel answers; refused
 * geometries are remembered so each is tried once.
 */
function withFallback(
  name: string,
  previous: tf.KernelConfig,
  native: (args: KernelArgs, dnnl: OneDnn) => TensorInfo | null,
  dnnl: OneDnn,
): Kernel {
  const refused = new Set<string>();
  const keyOf = (args: KernelArgs) =>
    JSON.stringify([Object.values(args.inputs).map((t) => t?.shape), args.attrs]);
  return (args) => {
    if (enabled && (refused.size === 0 || !refused.has(keyOf(args)))) {
      try {
        const out = native(args, dnnl);
        if (out) {
          calls[name] = (calls[name] ?? 0) + 1;
          return out;
        }
      } catch (err) {
        const why = (err as Error).message;
        refusals[name] = why;
        if (env("CONVLENS_NATIVE_DEBUG") === "1") {
          console.error(`convlens: native ${name} refused: ${why}`);
        }
        refused.add(keyOf(args));
      }
    }
    return previous.kernelFunc({
      inputs: args.inputs as tf.NamedTensorInfoMap,
      // deno-lint-ignore no-explicit-any
      backend: args.backend as any,
      attrs: args.attrs as tf.NamedAttrMap,
    }) as TensorInfo;
  };
}

function conv2D(
  { inputs, backend, attrs }: KernelArgs,
  dnnl: OneDnn,
  depthwise = false,
): TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = inputs;
  const activation = activationOf(attrs);
  if (!x || !filter || preluActivationWeights || !activation) return null;
  if (!isChannelsLast(attrs) || !float(x, filter, bias)) return null;
  const g = convGeometry(x.shape, filter.shape, attrs, depthwise);
  if (bias && sizeOf(bias.shape) !== g.outShape[3]) return null;
  const op = dnnl.convForward(g, bias != null, activation);
  guard(op, ["x", "filter", "bias", "output"], [x, filter, bias, g.outShape].map(bytesOf));
  return into(
    backend,
    g.outShape.slice(),
    (at, out) => op.run(at(x), at(filter), bias ? at(bias) : null, out, filter.dataId),
  );
}

function conv2DBackpropInput(
  { inputs, backend, attrs }: KernelArgs,
  dnnl: OneDnn,
  depthwise = false,
): TensorInfo | null {
  const { dy, filter } = inputs;
  if (!dy || !filter || !isChannelsLast(attrs) || !float(dy, filter)) return null;
  const inShape = attrs.inputShape as number[];
  if (sizeOf(inShape) === 0) return null;
  const g = convGeometry(inShape, filter.shape, attrs, depthwise);
  const op = dnnl.convBackwardData(g);
  guard(op, ["dy", "filter", "dx"], [dy, filter, inShape].map(bytesOf));
  return into(
    backend,
    inShape.slice(),
    (at, out) => op.run(at(dy), at(filter), out, filter.dataId),
  );
}

function conv2DBackpropFilter(
  { inputs, backend, attrs }: KernelArgs,
  dnnl: OneDnn,
  depthwise = false,
): TensorInfo | null {
  const { x, dy } = inputs;
  if (!x || !dy || !isChannelsLast(attrs) || !float(x, dy)) return null;
  const filterShape = attrs.filterShape as number[];
  const g = convGeometry(x.shape, filterShape, attrs, depthwise);
  const op = dnnl.convBackwardWeights(g);
  guard(op, ["x", "dy", "dfilter"], [x, dy, filterShape].map(bytesOf));
  return into(backend, filterShape.slice(), (at, out) => op.run(at(x), at(dy), out));
}

function matMul({ inputs, backend, attrs }: KernelArgs, dnnl: OneDnn): TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = inputs;
  const activation = activationOf(attrs);
  if (!a || !b || preluActivationWeights || !activation) return null;
  const rank = a.shape.length;
  if (rank < 2 || b.shape.length !== rank || !float(a, b, bias)) return null;
  const transposeA = attrs.transposeA === true, transposeB = attrs.transposeB === true;
  // Leading dimensions are one batch axis; each side's is the same or all 1s.
  const lead = (t: TensorInfo) => t.shape.slice(0, rank - 2);
  const leadA = lead(a), leadB = lead(b);
  const batchA = sizeOf(leadA), batchB = sizeOf(leadB);
  if (batchA !== 1 && batchB !== 1 && leadA.join() !== leadB.join()) return null;
  const [a1, a2] = a.shape.slice(rank - 2);
  const [b1, b2] = b.shape.slice(rank - 2);
  const m = transposeA ? a2 : a1, k = transposeA ? a1 : a2;
  const n = transposeB ? b1 : b2;
  if ((transposeB ? b2 : b1) !== k) return null;
  if (bias && sizeOf(bias.shape) !== n) return null;
  const op = dnnl.matMul({
    batchA,
    batchB,
    m,
    k,
    n,
    transposeA,
    transposeB,
    bias: bias != null,
    activation,
  });
  const outShape = [...(batchA >= batchB ? leadA : leadB), m, n];
  guard(op, ["a", "b", "bias", "output"], [a, b, bias, outShape].map(bytesOf));
  return into(
    backend,
    outShape,
    (at, out) => op.run(at(a), at(b), bias ? at(bias) : null, out),
  );
}

/** The max-pool gradient, first maximum of each window (as tfjs's cpu backend). */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs, dnnl: OneDnn): TensorInfo | null {
  const { dy, input } = inputs;
  if (!dy || !input || !float(dy, input)) return null;
  const info = poolInfo(input.shape, attrs);
  const p = info.padInfo;
  const op = dnnl.maxPoolBackward({
    inShape: input.shape,
    outShape: info.outShape,
    kernel: [info.filterHeight, info.filterWidth],
    strides: [info.strideHeight, info.strideWidth],
    pads: [p.top, p.bottom, p.left, p.right],
  });
  guard(op, ["input", "dy", "dx"], [input, dy, input].map(bytesOf));
  return into(backend, input.shape.slice(), (at, out) => op.run(at(input), at(dy), out));
}

/** The kernel the ReLU gradient runs on wasm while the native path is on. */
export const RELU_GRAD_KERNEL = "ConvlensReluGrad";

/** dy * step(x) by the wasm kernels, as stock tfjs computes the ReLU gradient. */
function stockReluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const call = (name: string, ins: Record<string, TensorInfo>, attrs: Attrs = {}) =>
    tf.getKernel(name, "wasm")!.kernelFunc({
      inputs: ins,
      // deno-lint-ignore no-explicit-any
      backend: backend as any,
      attrs: attrs as tf.NamedAttrMap,
    }) as TensorInfo;
  const mask = call("Step", { x: inputs.x! }, { alpha: 0 });
  const out = call("Multiply", { a: inputs.dy!, b: mask });
  backend.disposeData(mask.dataId);
  return out;
}

/** dx = x > 0 ? dy : 0 in one native pass (stock tfjs: step, cast, multiply). */
/** The clip gradient (`elementwise_grads.ts`'s kernel) on every core. */
function clipGrad({ inputs, backend, attrs }: KernelArgs, dnnl: OneDnn): TensorInfo | null {
  const { dy, x } = inputs;
  if (!dy || !x || !float(dy, x) || sizeOf(dy.shape) !== sizeOf(x.shape)) return null;
  const n = sizeOf(x.shape);
  // Below a few thousand elements one pass on this thread beats waking the others.
  if (n < 4096) return null;
  const op = dnnl.clipBackward(n, attrs.clipValueMin as number, attrs.clipValueMax as number);
  guard(op, ["x", "dy", "dx"], [x, dy, x].map(bytesOf));
  return into(backend, x.shape.slice(), (at, out) => op.run(at(x), at(dy), out));
}

function reluGrad({ inputs, backend }: KernelArgs, dnnl: OneDnn): TensorInfo | null {
  const { dy, x } = inputs;
  if (!dy || !x || !float(dy, x) || sizeOf(dy.shape) !== sizeOf(x.shape)) return null;
  const op = dnnl.reluBackward(sizeOf(x.shape));
  guard(op, ["x", "dy", "dx"], [x, dy, x].map(bytesOf));
  return into(backend, x.shape.slice(), (at, out) => op.run(at(x), at(dy), out));
}

/**
 * Sends the ReLU gradient to {@linkcode RELU_GRAD_KERNEL} on wasm while the
 * native kernels are on; elsewhere the stock gradient runs. The rule swaps of
 * `gradients.ts` save and restore whatever is registered, this included.
 */
function routeReluGradient(): void {
  const original = tf.getGradient("Relu");
  if (!original) return;
  tf.unregisterGradient("Relu");
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const g = dy as tf.Tensor;
      if (!enabled || tf.getBackend() !== "wasm" || g.dtype !== "float32") {
        return original.gradFunc(dy, saved, attrs);
      }
      const x = saved[0];
      return {
        x: () => {
          const dx = tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: g, x }) as tf.Tensor;
          // Read here only: freed now rather than when the backward pass ends.
          g.dispose();
          return dx;
        },
      };
    },
  });
  // Its own gradient, for second derivatives: linear in dy with the same mask.
  tf.registerGradient({
    kernelName: RELU_GRAD_KERNEL,
    inputsToSave: ["x"],
    gradFunc: (ddx, saved) => ({
      dy: () =>
        tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: ddx as tf.Tensor, x: saved[0] }) as tf.Tensor,
      x: () => tf.zerosLike(saved[0]),
    }),
  });
}

let ones = new Float32Array(0);

/**
 * A sum over the leading axes (a conv or dense bias gradient: all but the
 * channel axis) as a product with a row of ones. The WASM kernel would first
 * transpose the reduced axes innermost, then sum on one thread.
 */
function sum({ inputs, backend, attrs }: KernelArgs, dnnl: OneDnn): TensorInfo | null {
  const { x } = inputs;
  if (!x || !float(x)) return null;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape)
    .sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= rank || axes.some((a, i) => a !== i)) return null;
  const rows = sizeOf(x.shape.slice(0, axes.length));
  const cols = sizeOf(x.shape.slice(axes.length));
  // Below a few rows the transpose is cheap and the single pass wins.
  if (rows < 64) return null;
  if (ones.length < rows) ones = new Float32Array(rows).fill(1);
  const op = dnnl.matMul({
    batchA: 1,
    batchB: 1,
    m: 1,
    k: rows,
    n: cols,
    transposeA: false,
    transposeB: false,
    bias: false,
    activation: "linear",
  });
  const outShape = attrs.keepDims
    ? x.shape.map((d, i) => (i < axes.length ? 1 : d))
    : x.shape.slice(axes.length);
  guard(
    op,
    ["ones", "x", "bias", "output"],
    [ones.byteLength, bytesOf(x), 0, bytesOf(outShape)],
  );
  const row = Deno.UnsafePointer.of(ones as unknown as BufferSource);
  return into(backend, outShape, (at, out) => op.run(row, at(x), null, out));
}

const NATIVE: [string, (args: KernelArgs, dnnl: OneDnn) => TensorInfo | null][] = [
  ["Conv2D", conv2D],
  ["FusedConv2D", conv2D],
  ["Conv2DBackpropInput", conv2DBackpropInput],
  ["Conv2DBackpropFilter", conv2DBackpropFilter],
  ["DepthwiseConv2dNative", (a, d) => conv2D(a, d, true)],
  ["FusedDepthwiseConv2D", (a, d) => conv2D(a, d, true)],
  ["DepthwiseConv2dNativeBackpropInput", (a, d) => conv2DBackpropInput(a, d, true)],
  ["DepthwiseConv2dNativeBackpropFilter", (a, d) => conv2DBackpropFilter(a, d, true)],
  ["BatchMatMul", matMul],
  ["_FusedMatMul", matMul],
  ["Sum", sum],
  ["MaxPoolGrad", maxPoolGrad],
  [CLIP_GRAD_KERNEL, clipGrad],
];

/**
 * Replaces the WASM backend's convolution and matrix-product kernels by oneDNN
 * ones when the library can be opened. Safe to call more than once; it
 * registers the WASM kernels first (they become the fallbacks). Call it before
 * the wasm backend starts.
 */
export function registerNativeKernels(): NativeStatus {
  if (status) return status;
  // The kernels wrapped here fall back to convlens's WASM kernels, so those
  // must be in place first.
  registerWasmKernels();
  registerElementwiseGradients();
  if (env("CONVLENS_NATIVE") === "0" || env("CONVLENS_STOCK_WASM") === "1") {
    return status = {
      kernels: [],
      threads: 0,
      why: "turned off by the environment",
      calls,
      refused: refusals,
    };
  }
  const dnnl = oneDnn();
  if (typeof dnnl === "string") {
    return status = { kernels: [], threads: 0, why: dnnl, calls, refused: refusals };
  }
  const kernels: string[] = [];
  for (const [name, native] of NATIVE) {
    const previous = tf.getKernel(name, "wasm");
    if (!previous) continue;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: withFallback(name, previous, native, dnnl) as unknown as tf.KernelFunc,
      setupFunc: previous.setupFunc,
      disposeFunc: previous.disposeFunc,
    });
    kernels.push(name);
  }
  // A kernel of convlens's own, so with the stock composition as its fallback.
  tf.registerKernel({
    kernelName: RELU_GRAD_KERNEL,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const out = enabled ? reluGrad(args, dnnl) : null;
      if (out) {
        calls[RELU_GRAD_KERNEL] = (calls[RELU_GRAD_KERNEL] ?? 0) + 1;
        return out;
      }
      return stockReluGrad(args);
    }) as unknown as tf.KernelFunc,
  });
  routeReluGradient();
  kernels.push(RELU_GRAD_KERNEL);
  return status = {
    kernels,
    threads: dnnl.threads,
    openmp: dnnl.openmp,
    why: "",
    calls,
    refused: refusals,
  };
}
