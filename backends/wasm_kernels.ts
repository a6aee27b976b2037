/**
 * Gradient kernels for the WASM backend, built from the kernels it already has.
 *
 * Stock tfjs-backend-wasm 4.22 lacks `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput/Filter` and `UnsortedSegmentSum`, so a
 * plain `tf.grad` through a conv layer's weights, a depthwise conv or a `gather`
 * throws; and its `Conv2DBackpropInput` is a scalar loop about 6x slower than
 * the same result computed by XNNPACK's forward convolution. Every kernel here
 * rewrites the gradient as a forward (depthwise) convolution or a scatter, which
 * XNNPACK runs with SIMD, and frees each intermediate it makes.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import type { Attrs, KernelArgs, Pad, TensorInfo, WasmBackend } from "./kernel_types.ts";

/** Set to "1" to keep stock tfjs-backend-wasm (for baseline timings). */
const SKIP_ENV = "CONVLENS_STOCK_WASM";

let registered = false;

// The stock kernel is kept so that layouts the fast path does not cover (NCHW,
// pads larger than the filter) still get an answer; it is also needed by the
// replacement's setup, since unregistering it means the engine no longer runs
// its setupFunc when the wasm backend starts.
let stockBackpropInput: tf.KernelConfig | undefined;
const stockSetUp = new WeakSet<object>();

/** Runs one of the wasm backend's own kernels. */
function run(
  backend: WasmBackend,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: Attrs = {},
): TensorInfo {
  const kernel = tf.getKernel(name, "wasm");
  if (!kernel) throw new Error(`convlens: the wasm backend has no ${name} kernel`);
  return kernel.kernelFunc({
    inputs,
    // deno-lint-ignore no-explicit-any
    backend: backend as any,
    attrs: attrs as tf.NamedAttrMap,
  }) as TensorInfo;
}

/** Frees intermediates; the engine never sees them, so nothing else will. */
function free(backend: WasmBackend, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** A stride or dilation attribute as [height, width]. */
function pair(v: unknown): [number, number] {
  if (v == null) return [1, 1];
  if (typeof v === "number") return [v, v];
  const a = v as number[];
  return [a[0], a.length > 1 ? a[1] : a[0]];
}

/** Slices off negative pads (a crop), leaving only non-negative pads for XNNPACK. */
function cropForNegativePads(
  backend: WasmBackend,
  t: TensorInfo,
  axisH: number,
  pads: [number, number, number, number],
): { t: TensorInfo; pads: [number, number, number, number]; made: boolean } {
  const [top, bottom, left, right] = pads;
  if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) return { t, pads, made: false };
  const begin = t.shape.map(() => 0);
  const size = t.shape.slice();
  const cT = Math.max(0, -top), cB = Math.max(0, -bottom);
  const cL = Math.max(0, -left), cR = Math.max(0, -right);
  begin[axisH] = cT;
  size[axisH] -= cT + cB;
  begin[axisH + 1] = cL;
  size[axisH + 1] -= cL + cR;
  const out = run(backend, "Slice", { x: t }, { begin, size });
  return {
    t: out,
    pads: [Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)],
    made: true,
  };
}

/**
 * dy with (stride - 1) zeros after every row and column, so that a stride-1
 * convolution over it reproduces the transposed strided convolution exactly.
 */
function zeroInsert(backend: WasmBackend, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const six = run(backend, "Reshape", { x: dy }, { shape: [n, h, 1, w, 1, c] });
  const padded = run(backend, "PadV2", { x: six }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  const out = run(backend, "Reshape", { x: padded }, { shape: [n, h * sh, w * sw, c] });
  free(backend, six, padded);
  return out;
}

interface GeometryInfo {
  inShape: [number, number, number, number];
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** tfjs's geometry of a conv kernel call (NHWC) from its shapes and attributes. */
export function convInfo(
  inShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    pair(attrs.strides),
    pair(attrs.dilations),
    attrs.pad as Pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
    depthwise,
  );
}

/** tfjs's geometry of a pool kernel call (NHWC) from its input shape and attributes. */
export function poolInfo(
  inShape: number[],
  attrs: Record<string, unknown>,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    inShape as [number, number, number, number],
    attrs.filterSize as [number, number],
    attrs.strides as [number, number],
    1,
    attrs.pad as Pad as "same",
    attrs.dimRoundingMode as "floor" | undefined,
  );
}

function geometry(
  inShape: number[],
  filterShape: number[],
  attrs: Attrs,
  depthwise: boolean,
): GeometryInfo {
  const info = convInfo(inShape, filterShape, attrs, depthwise);
  return {
    inShape: info.inShape,
    outH: info.outHeight,
    outW: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    bottom: info.padInfo.bottom,
    left: info.padInfo.left,
    right: info.padInfo.right,
  };
}

/** Whether a kernel's `dataFormat` attribute is NHWC (the default). */
export function isChannelsLast(attrs: Attrs): boolean {
  const f = attrs.dataFormat as string | undefined;
  return f == null || f === "NHWC" || f === "channelsLast";
}

/**
 * The input gradient of a (depthwise) convolution as a stride-1 forward
 * convolution of the zero-inserted dy with the 180-degree-rotated filter; pads
 * are those of the "full" correlation, less the forward pads.
 */
function transposedConv(
  backend: WasmBackend,
  dy: TensorInfo,
  rotated: TensorInfo,
  g: GeometryInfo,
  kernel: "Conv2D" | "DepthwiseConv2dNative",
): TensorInfo {
  const [, inH, inW] = g.inShape;
  const effH = (g.kh - 1) * g.dh + 1, effW = (g.kw - 1) * g.dw + 1;
  const dyD = zeroInsert(backend, dy, g.sh, g.sw);
  const padT = effH - 1 - g.top, padL = effW - 1 - g.left;
  const pads: [number, number, number, number] = [
    padT,
    inH + effH - 1 - dyD.shape[1] - padT,
    padL,
    inW + effW - 1 - dyD.shape[2] - padL,
  ];
  const cropped = cropForNegativePads(backend, dyD, 1, pads);
  const [t, b, l, r] = cropped.pads;
  const out = run(backend, kernel, { x: cropped.t, filter: rotated }, {
    strides: [1, 1],
    dilations: [g.dh, g.dw],
    pad: [[0, 0], [t, b], [l, r], [0, 0]],
    dataFormat: "NHWC",
  });
  if (cropped.made) free(backend, cropped.t);
  if (dyD !== dy) free(backend, dyD);
  return out;
}

/**
 * The filter gradient as a forward convolution in which the roles swap: the
 * input's channels become the batch, the batch becomes the channels, dy becomes
 * the filter, the forward stride becomes the dilation and the forward dilation
 * the stride. `xT` is [C, H, W, batch-like]; the result is [C, kh, kw, out].
 */
function correlate(
  backend: WasmBackend,
  xT: TensorInfo,
  dyAsFilter: TensorInfo,
  g: GeometryInfo,
  kernel: "Conv2D" | "DepthwiseConv2dNative",
): TensorInfo {
  const [, h, w] = xT.shape;
  const pads: [number, number, number, number] = [
    g.top,
    (g.kh - 1) * g.dh + (g.outH - 1) * g.sh + 1 - h - g.top,
    g.left,
    (g.kw - 1) * g.dw + (g.outW - 1) * g.sw + 1 - w - g.left,
  ];
  const cropped = cropForNegativePads(backend, xT, 1, pads);
  const [t, b, l, r] = cropped.pads;
  const out = run(backend, kernel, { x: cropped.t, filter: dyAsFilter }, {
    strides: [g.dh, g.dw],
    dilations: [g.sh, g.sw],
    pad: [[0, 0], [t, b], [l, r], [0, 0]],
    dataFormat: "NHWC",
  });
  if (cropped.made) free(backend, cropped.t);
  return out;
}

function conv2DBackpropInput(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { dy, filter } = inputs;
  const stock = stockBackpropInput!;
  if (!stockSetUp.has(backend)) {
    // deno-lint-ignore no-explicit-any
    stock.setupFunc?.(backend as any);
    stockSetUp.add(backend);
  }
  if (!isChannelsLast(attrs)) {
    return stock.kernelFunc({
      inputs,
      // deno-lint-ignore no-explicit-any
      backend: backend as any,
      attrs: attrs as tf.NamedAttrMap,
    }) as TensorInfo;
  }
  const g = geometry(attrs.inputShape as number[], filter.shape, attrs, false);
  const flipped = run(backend, "Reverse", { x: filter }, { dims: [0, 1] });
  const rotated = run(backend, "Transpose", { x: flipped }, { perm: [0, 1, 3, 2] });
  free(backend, flipped);
  const out = transposedConv(backend, dy, rotated, g, "Conv2D");
  free(backend, rotated);
  return out;
}

function conv2DBackpropFilter(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { x, dy } = inputs;
  if (!isChannelsLast(attrs)) {
    throw new Error(
      "convlens: Conv2DBackpropFilter on wasm supports NHWC only; use dataFormat 'channelsLast' or the cpu backend",
    );
  }
  const g = geometry(x.shape, attrs.filterShape as number[], attrs, false);
  const xT = run(backend, "Transpose", { x }, { perm: [3, 1, 2, 0] });
  const dyT = run(backend, "Transpose", { x: dy }, { perm: [1, 2, 0, 3] });
  const r = correlate(backend, xT, dyT, g, "Conv2D");
  free(backend, xT, dyT);
  const out = run(backend, "Transpose", { x: r }, { perm: [1, 2, 0, 3] });
  free(backend, r);
  return out;
}

function depthwiseBackpropInput(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { dy, filter } = inputs;
  const g = geometry(attrs.inputShape as number[], filter.shape, attrs, true);
  const [kh, kw, c, m] = filter.shape;
  const flipped = run(backend, "Reverse", { x: filter }, { dims: [0, 1] });
  // Each of the c*m dy channels is convolved with its own rotated filter tap
  // and the m channels of one input channel are summed after.
  const rotated = m === 1
    ? flipped
    : run(backend, "Reshape", { x: flipped }, { shape: [kh, kw, c * m, 1] });
  const wide = transposedConv(backend, dy, rotated, g, "DepthwiseConv2dNative");
  if (rotated !== flipped) free(backend, rotated);
  free(backend, flipped);
  if (m === 1) return wide;
  const [n, h, w] = wide.shape;
  const split = run(backend, "Reshape", { x: wide }, { shape: [n, h, w, c, m] });
  const out = run(backend, "Sum", { x: split }, { axis: [4], keepDims: false });
  free(backend, wide, split);
  return out;
}

function depthwiseBackpropFilter(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const g = geometry(x.shape, filterShape, attrs, true);
  const [n, h, w, c] = x.shape;
  const [kh, kw, , m] = filterShape;
  const [, oh, ow] = dy.shape;
  // Batch and channel fold into n*c depthwise channels of one image, so one
  // depthwise convolution correlates every (image, channel) with its dy; the
  // images are summed after.
  const xT = run(backend, "Transpose", { x }, { perm: [1, 2, 0, 3] });
  const xImg = run(backend, "Reshape", { x: xT }, { shape: [1, h, w, n * c] });
  const dyT = run(backend, "Transpose", { x: dy }, { perm: [1, 2, 0, 3] });
  const dyF = run(backend, "Reshape", { x: dyT }, { shape: [oh, ow, n * c, m] });
  const r = correlate(backend, xImg, dyF, g, "DepthwiseConv2dNative");
  free(backend, xT, xImg, dyT, dyF);
  const perImage = run(backend, "Reshape", { x: r }, { shape: [kh, kw, n, c * m] });
  const summed = run(backend, "Sum", { x: perImage }, { axis: [2], keepDims: false });
  const out = run(backend, "Reshape", { x: summed }, { shape: filterShape });
  free(backend, r, perImage, summed);
  return out;
}

function unsortedSegmentSum(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  const count = tf.util.sizeFromShape(segmentIds.shape);
  const inner = x.shape.slice(segmentIds.shape.length);
  const innerSize = tf.util.sizeFromShape(inner);
  const ids = backend.typedArrayFromHeap(segmentIds);
  let outOfRange = false;
  for (let i = 0; i < count; i++) {
    if (ids[i] < 0 || ids[i] >= numSegments || !Number.isInteger(ids[i])) {
      outOfRange = true;
      break;
    }
  }
  // ScatterNd sums duplicate indices, which is exactly a segment sum; ids out of
  // range (dropped by TensorFlow's definition) go to one spare row cut off after.
  const rows = outOfRange ? numSegments + 1 : numSegments;
  let indices: TensorInfo;
  if (outOfRange || segmentIds.dtype !== "int32") {
    indices = backend.makeOutput([count, 1], "int32");
    const dst = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let i = 0; i < count; i++) {
      const v = ids[i];
      dst[i] = v >= 0 && v < numSegments && Number.isInteger(v) ? v : numSegments;
    }
  } else {
    indices = run(backend, "Reshape", { x: segmentIds }, { shape: [count, 1] });
  }
  const updates = run(backend, "Reshape", { x }, { shape: [count, innerSize] });
  const scattered = run(backend, "ScatterNd", { indices, updates }, {
    shape: [rows, innerSize],
  });
  free(backend, indices, updates);
  let kept = scattered;
  if (outOfRange) {
    kept = run(backend, "Slice", { x: scattered }, {
      begin: [0, 0],
      size: [numSegments, innerSize],
    });
    free(backend, scattered);
  }
  const out = run(backend, "Reshape", { x: kept }, { shape: [numSegments, ...inner] });
  free(backend, kept);
  return out;
}

/**
 * Max-pool backprop routing each dy to the first maximum of its window, as the
 * cpu and webgpu backends do. The stock wasm kernel starts its running maximum
 * at FLT_MIN (the smallest positive float) instead of -infinity, so windows whose
 * values are all <= 0 pass no gradient at all.
 */
function maxPoolGrad(
  { inputs, backend, attrs }: KernelArgs,
): TensorInfo {
  const { dy, input } = inputs;
  const info = poolInfo(input.shape, attrs);
  const dx = backend.makeOutput(input.shape, "float32");
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const { batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh } = info;
  const fw = info.effectiveFilterWidth;
  const dh = info.dilationHeight, dw = info.dilationWidth;
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - info.padInfo.top;
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - info.padInfo.left;
        best.fill(-Infinity);
        where.fill(-1);
        for (let y = Math.max(0, y0); y < Math.min(h, y0 + fh); y += 1) {
          if ((y - y0) % dh !== 0) continue;
          for (let x = Math.max(0, x0); x < Math.min(w, x0 + fw); x += 1) {
            if ((x - x0) % dw !== 0) continue;
            const base = ((b * h + y) * w + x) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = xv[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                where[ch] = base + ch;
              }
            }
          }
        }
        const dyBase = ((b * oh + oy) * ow + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          if (where[ch] >= 0) out[where[ch]] += dyv[dyBase + ch];
        }
      }
    }
  }
  return dx;
}

/**
 * The sign of each element, as the cpu backend gives it (-1, 0 or 1; -0 gives 0),
 * and NaN for NaN. The stock wasm kernel returns 0 for small nonzero values
 * (sign(4e-9) and sign(1e-30) are 0 there), which breaks FGSM-style steps on
 * tiny gradients. A plain loop over the heap: exact for every dtype.
 */
function sign(
  { inputs, backend }: { inputs: Record<string, TensorInfo>; backend: WasmBackend },
): TensorInfo {
  const { x } = inputs;
  // Make the output first: allocating may grow the heap and detach earlier views.
  const info = backend.makeOutput(x.shape, x.dtype);
  const out = backend.typedArrayFromHeap(info);
  const xv = backend.typedArrayFromHeap(x);
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i];
    out[i] = v > 0 ? 1 : v < 0 ? -1 : v === 0 ? 0 : NaN;
  }
  return info;
}

let stockFusedMatMul: tf.KernelConfig | undefined;
const fusedSetUp = new WeakSet<object>();

/** The unary kernel and attributes of each fused activation. */
function activationKernel(attrs: Attrs): [string, Attrs] | null {
  switch (attrs.activation as string | undefined) {
    case undefined:
    case "linear":
      return null;
    case "relu":
      return ["Relu", {}];
    case "relu6":
      return ["Relu6", {}];
    case "elu":
      return ["Elu", {}];
    case "sigmoid":
      return ["Sigmoid", {}];
    case "leakyrelu":
      return ["LeakyRelu", { alpha: attrs.leakyreluAlpha ?? 0.2 }];
    default:
      return ["Prelu", {}];
  }
}

/**
 * Stock WASM `_FusedMatMul` adds the bias wrongly when the batch is larger
 * than 1 or either side is transposed (measured: errors as large as the
 * values), so those products are computed as product, add and activation;
 * the plain case (a dense layer's) keeps the stock fused kernel.
 */
function fusedMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const stock = stockFusedMatMul!;
  if (!fusedSetUp.has(backend)) {
    // deno-lint-ignore no-explicit-any
    stock.setupFunc?.(backend as any);
    fusedSetUp.add(backend);
  }
  const { a, b, bias, preluActivationWeights } = inputs;
  const plain = Math.max(a.shape[0], b.shape[0]) === 1 && !attrs.transposeA &&
    !attrs.transposeB;
  if (!bias || plain) {
    return stock.kernelFunc({
      inputs,
      // deno-lint-ignore no-explicit-any
      backend: backend as any,
      attrs: attrs as tf.NamedAttrMap,
    }) as TensorInfo;
  }
  const product = run(backend, "BatchMatMul", { a, b }, {
    transposeA: attrs.transposeA,
    transposeB: attrs.transposeB,
  });
  const sum = run(backend, "Add", { a: product, b: bias! });
  free(backend, product);
  const act = activationKernel(attrs);
  if (!act) return sum;
  const [name, actAttrs] = act;
  const out = name === "Prelu"
    ? run(backend, name, { x: sum, alpha: preluActivationWeights })
    : run(backend, name, { x: sum }, actAttrs);
  free(backend, sum);
  return out;
}

/**
 * Identity without a copy: the data is shared and reference-counted, as the
 * cpu backend does (stock WASM copies the whole tensor; the gradient tape
 * calls it dozens of times per backward pass).
 */
function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const { x } = inputs;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let stockSlice: tf.KernelConfig | undefined;

/**
 * Slice straight from the heap. The stock WASM kernel first reads its whole
 * input with `readSync`, a copy of all of it, for every slice: taking one
 * value off a 64-image batch of 256x256x3 took 30 ms, and a batch sliced off
 * a data set copied the data set. Here only the sliced rows are copied.
 */
function slice(args: KernelArgs): TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  if (x.dtype === "string") {
    return stockSlice!.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  }
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor,
    attrs.begin as number[],
    attrs.size as number[],
  );
  const out = backend.makeOutput(size, x.dtype);
  const count = size.reduce((a, b) => a * b, 1);
  if (count === 0) return out;
  // Views after the allocation, which may have grown (and moved) the heap.
  const from = backend.typedArrayFromHeap(x), to = backend.typedArrayFromHeap(out);
  const rank = size.length;
  if (rank === 0) {
    to[0] = from[0];
    return out;
  }
  const strides = [...tf.util.computeStrides(x.shape), 1];
  // Trailing dimensions taken whole make one contiguous run with the last
  // partial one, k.
  let k = rank - 1;
  while (k > 0 && size[k] === x.shape[k]) k--;
  const run = size.slice(k).reduce((a, b) => a * b, 1);
  const index = new Array<number>(k).fill(0);
  for (let o = 0;; o += run) {
    let at = begin[k] * strides[k];
    for (let d = 0; d < k; d++) at += (begin[d] + index[d]) * strides[d];
    if (run < 16) {
      for (let q = 0; q < run; q++) to[o + q] = from[at + q];
    } else {
      to.set(from.subarray(at, at + run), o);
    }
    let d = k - 1;
    while (d >= 0 && ++index[d] === size[d]) index[d--] = 0;
    if (d < 0) break;
  }
  return out;
}

let stockCast: tf.KernelConfig | undefined;

/**
 * Cast to bool as the cpu backend does (any value but 0 is true, NaN too):
 * the stock WASM kernel truncates to a byte instead, so -2.5 became 254,
 * 3.7 became 3 and -0.2 became false.
 */
function cast(args: KernelArgs): TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  if (attrs.dtype !== "bool" || x.dtype === "bool" || x.dtype === "string") {
    return stockCast!.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  }
  const out = backend.makeOutput(x.shape, "bool");
  const from = backend.typedArrayFromHeap(x), to = backend.typedArrayFromHeap(out);
  for (let i = 0; i < to.length; i++) to[i] = from[i] !== 0 ? 1 : 0;
  return out;
}

/** The kernels this module registers on "wasm", by tfjs kernel name. */
export const WASM_KERNEL_NAMES: readonly string[] = [
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
  "UnsortedSegmentSum",
  "MaxPoolGrad",
  "Sign",
  "_FusedMatMul",
  "Identity",
  "Slice",
  "Cast",
];

/**
 * Registers the missing WASM gradient kernels, replaces the slow stock
 * `Conv2DBackpropInput` and the inexact stock `MaxPoolGrad` and `Sign`; safe to
 * call more than once. With the environment
 * variable `CONVLENS_STOCK_WASM=1` it does nothing, so benchmarks can time
 * stock tfjs.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  let skip = false;
  try {
    skip = Deno.env.get(SKIP_ENV) === "1";
  } catch {
    // Without --allow-env the fast kernels are the default.
  }
  if (skip) return;
  const add = (name: string, kernelFunc: unknown) => {
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: kernelFunc as tf.KernelFunc,
    });
  };
  const stock = tf.getKernel("Conv2DBackpropInput", "wasm");
  if (stock) {
    stockBackpropInput = stock;
    tf.unregisterKernel("Conv2DBackpropInput", "wasm");
    add("Conv2DBackpropInput", conv2DBackpropInput);
  }
  if (tf.getKernel("MaxPoolGrad", "wasm")) tf.unregisterKernel("MaxPoolGrad", "wasm");
  add("MaxPoolGrad", maxPoolGrad);
  if (tf.getKernel("Sign", "wasm")) tf.unregisterKernel("Sign", "wasm");
  add("Sign", sign);
  if (tf.getKernel("Identity", "wasm")) tf.unregisterKernel("Identity", "wasm");
  add("Identity", identity);
  stockCast = tf.getKernel("Cast", "wasm");
  if (stockCast) {
    tf.unregisterKernel("Cast", "wasm");
    add("Cast", cast);
  }
  stockSlice = tf.getKernel("Slice", "wasm");
  if (stockSlice) {
    tf.unregisterKernel("Slice", "wasm");
    add("Slice", slice);
  }
  const stockFused = tf.getKernel("_FusedMatMul", "wasm");
  if (stockFused) {
    stockFusedMatMul = stockFused;
    tf.unregisterKernel("_FusedMatMul", "wasm");
    tf.registerKernel({
      kernelName: "_FusedMatMul",
      backendName: "wasm",
      kernelFunc: fusedMatMul as unknown as tf.KernelFunc,
      setupFunc: stockFused.setupFunc,
    });
  }
  const missing: [string, unknown][] = [
    ["Conv2DBackpropFilter", conv2DBackpropFilter],
    ["DepthwiseConv2dNativeBackpropInput", depthwiseBackpropInput],
    ["DepthwiseConv2dNativeBackpropFilter", depthwiseBackpropFilter],
    ["UnsortedSegmentSum", unsortedSegmentSum],
  ];
  for (const [name, fn] of missing) {
    if (!tf.getKernel(name, "wasm")) add(name, fn);
  }
}
