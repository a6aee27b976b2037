/**
 * oneDNN (libdnnl 2.x) through Deno's FFI: the convolution and matrix-product
 * primitives the WASM backend's native kernels run on (see `native_kernels.ts`).
 *
 * WASM runs on one thread under Deno and its 128-bit SIMD has no FMA, so its
 * convolutions and their gradients stay several times behind a native library
 * on the same cores. oneDNN runs them with AVX2/AVX-512 on every core, reading
 * and writing the tensors where they already live, in the WASM heap, so no
 * data is copied. Only the 2.x C API is bound (the op-descriptor API that 3.x
 * removed); the library is looked for as `libdnnl.so.2` (Debian and Ubuntu
 * `libdnnl2`; `libdnnl.2.dylib` on macOS, `dnnl.dll` on Windows) unless
 * `CONVLENS_ONEDNN` names a file.
 *
 * @module
 */
import type { Ptr } from "./kernel_types.ts";

const F32 = 3; // dnnl_f32
const ENGINE_CPU = 1; // dnnl_cpu
const STREAM_DEFAULT = 1; // dnnl_stream_default_flags
const TAG_ANY = 1; // dnnl_format_tag_any
/** dnnl_prop_kind_t values. */
const FORWARD_TRAINING = 64;
/** dnnl_alg_kind_t values. */
const CONV_DIRECT = 1;
const POOLING_MAX = 511;
const ELTWISE_RELU = 31;
/** dnnl_eltwise_clip: forward min(max(x, alpha), beta); backward dy where alpha < x <= beta. */
const ELTWISE_CLIP = 255;
/** dnnl_query_t values. */
const QUERY_IMPL_INFO = 8;
const QUERY_WEIGHTS_MD = 131;
const QUERY_DIFF_WEIGHTS_MD = 132;
const QUERY_WORKSPACE_MD = 135;
/** DNNL_ARG_* values. */
const ARG_SRC = 1;
const ARG_DST = 17;
const ARG_WEIGHTS = 33;
const ARG_BIAS = 41;
const ARG_DIFF_SRC = 129;
const ARG_DIFF_DST = 145;
const ARG_DIFF_WEIGHTS = 161;
const ARG_WORKSPACE = 64;

/** sizeof(dnnl_memory_desc_t) in 2.x is 696; the op descriptors are larger still. */
const MD_BYTES = 1024;
/** Reordered filters kept per convolution geometry (see `filterFor`). */
const FILTER_COPIES = 8;
const OP_DESC_BYTES = 8192;

const SYMBOLS = {
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_backward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
} as const;

/**
 * The OpenMP setting convlens picks when the user set none: threads that wait
 * for work sleep instead of spinning. Measured by `bench/omp_policy.ts`: with
 * other busy processes on the machine spinning threads fight them for the cores
 * (2-3x slower), and on a quiet machine passive waiting costs nothing
 * measurable. libgomp reads its environment once, when it loads with oneDNN,
 * so this is set just before.
 */
export const OPENMP_DEFAULTS: Readonly<Record<string, string>> = { OMP_WAIT_POLICY: "passive" };

/** Variables by which a user states their own OpenMP policy; any of them set wins. */
const OPENMP_USER = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"];

/**
 * Applies {@linkcode OPENMP_DEFAULTS} unless the user set an OpenMP variable.
 *
 * @returns What was done, for the status line.
 */
function applyOpenMpDefaults(): string {
  const granted = (variable: string) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  try {
    if (!OPENMP_USER.every(granted)) {
      return "OpenMP left as it is (no --allow-env for OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS)";
    }
    const set = OPENMP_USER.filter((v) => Deno.env.get(v) !== undefined);
    if (set.length) return `OpenMP as the user set it (${set.join(", ")})`;
    for (const [k, v] of Object.entries(OPENMP_DEFAULTS)) Deno.env.set(k, v);
    return "OMP_WAIT_POLICY=passive";
  } catch {
    return "OpenMP left as it is";
  }
}

/** oneDNN's thread count: its OpenMP runtime's, else the cores. */
function threadCount(): number {
  try {
    const gomp = Deno.dlopen("libgomp.so.1", {
      omp_get_max_threads: { parameters: [], result: "i32" },
    });
    const n = gomp.symbols.omp_get_max_threads();
    gomp.close();
    return n;
  } catch {
    return navigator.hardwareConcurrency;
  }
}

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The activation a primitive applies to its result (`linear` = none). */
export type NativeActivation = "linear" | "relu" | "relu6";

/** Geometry of a 2-D convolution in NHWC with an HWIO filter (tfjs's layouts). */
export interface ConvGeometry {
  /** [batch, height, width, channels] of the input. */
  inShape: readonly number[];
  /** [kh, kw, in, out] of the filter. */
  filterShape: readonly number[];
  /** [batch, height, width, channels] of the output. */
  outShape: readonly number[];
  strides: readonly [number, number];
  dilations: readonly [number, number];
  /** [top, bottom, left, right]; each >= 0. */
  pads: readonly [number, number, number, number];
  /** A depthwise convolution: the filter is [kh, kw, channels, multiplier]. */
  depthwise?: boolean;
}

function dims(values: readonly number[]): BigInt64Array {
  const a = new BigInt64Array(12);
  values.forEach((v, i) => (a[i] = BigInt(v)));
  return a;
}

/**
 * A 1x1 convolution with stride s, unpadded, is the same convolution with
 * stride 1 over every s-th row and column of its input: the geometry of that
 * convolution, and the NCHW-logical strides that view the sampled rows and
 * columns inside the whole NHWC input. Null for any other convolution.
 */
function unitStride(g: ConvGeometry): { geometry: ConvGeometry; view: number[] } | null {
  const [kh, kw] = g.filterShape;
  const [sh, sw] = g.strides;
  if (g.depthwise || kh !== 1 || kw !== 1 || (sh === 1 && sw === 1)) return null;
  if (g.pads.some((p) => p !== 0)) return null;
  const [n, h, w, c] = g.inShape;
  const [, oh, ow] = g.outShape;
  return {
    geometry: { ...g, inShape: [n, oh, ow, c], strides: [1, 1] },
    view: [h * w * c, 1, sh * w * c, sw * c],
  };
}

/** The NCHW-logical descriptor of an NHWC tensor. */
function nhwc(shape: readonly number[]): [number[], number[]] {
  const [n, h, w, c] = shape;
  return [[n, c, h, w], [h * w * c, 1, w * c, c]];
}

/** The OIHW-logical descriptor of an HWIO filter. */
function hwio(shape: readonly number[]): [number[], number[]] {
  const [kh, kw, i, o] = shape;
  return [[o, i, kh, kw], [1, o, kw * i * o, i * o]];
}

/**
 * The grouped (G, O/G, I/G, H, W) descriptor of a depthwise filter [kh, kw,
 * channels, multiplier]: one group per channel, whose outputs c*m..c*m+m-1 are
 * the same channels tfjs numbers them as.
 */
function depthwiseFilter(shape: readonly number[]): [number[], number[]] {
  const [kh, kw, c, m] = shape;
  return [[c, m, 1, kh, kw], [m, 1, m, kw * c * m, c * m]];
}

function ptr(view: ArrayBufferView): Ptr {
  return Deno.UnsafePointer.of(view as unknown as BufferSource);
}

/** One memory object whose data handle is set before each run. */
interface Slot {
  arg: number;
  memory: Ptr;
}

/**
 * A created primitive with its memory objects, and, where oneDNN chose its own
 * layout for the weights, a reorder into a scratch buffer owned here.
 */
class Prepared {
  readonly args: Uint8Array;
  constructor(
    readonly dnnl: OneDnn,
    readonly primitive: Ptr,
    readonly slots: Slot[],
    readonly impl: string,
  ) {
    this.args = new Uint8Array(16 * slots.length);
    const dv = new DataView(this.args.buffer);
    slots.forEach((s, i) => {
      dv.setInt32(16 * i, s.arg, true);
      dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(s.memory)), true);
    });
  }

  /** Runs with the given data pointers, in the order of the slots. */
  run(handles: Ptr[]): void {
    const lib = this.dnnl.lib;
    for (let i = 0; i < handles.length; i++) {
      this.dnnl.check(
        lib.dnnl_memory_set_data_handle(this.slots[i].memory, handles[i]),
        "set handle",
      );
    }
    this.dnnl.check(
      lib.dnnl_primitive_execute(this.primitive, this.dnnl.stream, this.slots.length, this.args),
      "execute",
    );
  }
}

/** A reorder from the user's layout to a primitive's (or back). */
interface Reorder {
  prepared: Prepared;
  scratch: Float32Array;
}

/** A convolution or matrix product ready to run on raw pointers. */
export interface NativeOp {
  /** oneDNN's name for the implementation it picked (e.g. `brgconv:avx512_core`). */
  impl: string;
  /**
   * The bytes oneDNN reads or writes through each pointer given to `run`, in
   * order (0 for an absent bias), from its memory descriptors (padding and
   * strides included): what a caller checks against its buffers' sizes.
   */
  spans: number[];
}

/** Forward convolution: run(x, filter, bias | null, out). */
export interface ConvForward extends NativeOp {
  run(x: Ptr, filter: Ptr, bias: Ptr | null, out: Ptr, filterKey?: object): void;
}

/** Input gradient: run(dy, filter, dx). */
export interface ConvBackwardData extends NativeOp {
  run(dy: Ptr, filter: Ptr, dx: Ptr, filterKey?: object): void;
}

/** Filter gradient: run(x, dy, dfilter). */
export interface ConvBackwardWeights extends NativeOp {
  run(x: Ptr, dy: Ptr, dw: Ptr): void;
}

/** Batched matrix product: run(a, b, bias | null, out). */
export interface MatMulOp extends NativeOp {
  run(a: Ptr, b: Ptr, bias: Ptr | null, out: Ptr): void;
}

/** Max-pool gradient: run(x, dy, dx), the pool recomputed to find each maximum. */
export interface MaxPoolBackward extends NativeOp {
  run(x: Ptr, dy: Ptr, dx: Ptr): void;
}

/** ReLU gradient over n contiguous floats: run(x, dy, dx), dx = x > 0 ? dy : 0. */
export interface ReluBackward extends NativeOp {
  run(x: Ptr, dy: Ptr, dx: Ptr): void;
}

/** Geometry of a 2-D max pool in NHWC. */
export interface PoolGeometry {
  inShape: readonly number[];
  outShape: readonly number[];
  kernel: readonly [number, number];
  strides: readonly [number, number];
  /** [top, bottom, left, right]. */
  pads: readonly [number, number, number, number];
}

/** Shape of a batched product: a is [batchA, m, k] (or [batchA, k, m] transposed). */
export interface MatMulGeometry {
  batchA: number;
  batchB: number;
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Bias of length n added to every row. */
  bias: boolean;
  activation: NativeActivation;
}

/** What one cached op owns: oneDNN objects to destroy with it, buffers to keep alive. */
interface Owned {
  destroy: (() => void)[];
  keep: unknown[];
}

/**
 * Input channels from which oneDNN 2.x's 1x1 strided filter gradient stays
 * inside its workspace: one channel block on AVX-512 (16; 8 on AVX2).
 */
const RTUS_SAFE_CHANNELS = 16;

/** Ops kept by default; each holds JIT code and descriptors (tens of KB). */
export const CACHE_LIMIT = 512;

/** The oneDNN library, opened once, with a cache of primitives by geometry. */
export class OneDnn {
  readonly engine: Ptr;
  readonly stream: Ptr;
  readonly threads: number;
  /** The OpenMP wait policy in force and who chose it. */
  openmp = "";
  // Least recently used first; beyond the limit the oldest op is destroyed, so
  // a stream of ever-new shapes does not grow memory without bound.
  private cache = new Map<string, { op: NativeOp; owned: Owned }>();
  private limit = CACHE_LIMIT;
  // Where the op being made records what it owns.
  private owned: Owned = { destroy: [], keep: [] };

  private constructor(readonly lib: Lib, readonly path: string) {
    const out = new BigUint64Array(1);
    this.check(lib.dnnl_engine_create(out, ENGINE_CPU, 0n), "engine");
    this.engine = Deno.UnsafePointer.create(out[0]);
    this.check(lib.dnnl_stream_create(out, this.engine, STREAM_DEFAULT), "stream");
    this.stream = Deno.UnsafePointer.create(out[0]);
    this.threads = threadCount();
  }

  /**
   * Opens the library, or returns why it cannot be used (no FFI permission,
   * not installed, an incompatible version).
   */
  static open(): OneDnn | string {
    const os = Deno.build.os;
    let path = os === "darwin" ? "libdnnl.2.dylib" : os === "windows" ? "dnnl.dll" : "libdnnl.so.2";
    try {
      path = Deno.env.get("CONVLENS_ONEDNN") || path;
    } catch {
      // Without --allow-env the default name is used.
    }
    try {
      if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
        return "no --allow-ffi permission";
      }
      const openmp = applyOpenMpDefaults();
      const lib = Deno.dlopen(path, SYMBOLS as unknown as Deno.ForeignLibraryInterface);
      const dnnl = new OneDnn(lib.symbols as unknown as Lib, path);
      dnnl.openmp = openmp;
      return dnnl;
    } catch (err) {
      return `${path} not loaded (${
        (err as Error).message.split("\n")[0]
      }); install oneDNN 2.x (Debian/Ubuntu: apt install libdnnl2) or set CONVLENS_ONEDNN`;
    }
  }

  /** How many ops are cached now. */
  get cachedOps(): number {
    return this.cache.size;
  }

  /** Sets how many ops the cache keeps (least recently used go first). */
  setCacheLimit(limit: number): void {
    this.limit = Math.max(2, Math.floor(limit));
    this.evict();
  }

  private evict(): void {
    while (this.cache.size > this.limit) {
      const [key, entry] = this.cache.entries().next().value!;
      this.cache.delete(key);
      this.release(entry.owned);
    }
  }

  private release(owned: Owned): void {
    for (const destroy of owned.destroy.reverse()) destroy();
    owned.destroy.length = 0;
    owned.keep.length = 0;
  }

  /** @throws {Error} naming the call when oneDNN reports a failure. */
  check(status: number, what: string): void {
    if (status !== 0) throw new Error(`oneDNN ${what} failed (dnnl_status_t ${status})`);
  }

  private md(shape: readonly number[], strides?: readonly number[]): Uint8Array {
    const md = new Uint8Array(MD_BYTES);
    if (strides) {
      this.check(
        this.lib.dnnl_memory_desc_init_by_strides(
          md,
          shape.length,
          dims(shape),
          F32,
          dims(strides),
        ),
        "memory descriptor",
      );
    } else {
      this.check(
        this.lib.dnnl_memory_desc_init_by_tag(md, shape.length, dims(shape), F32, TAG_ANY),
        "memory descriptor",
      );
    }
    this.owned.keep.push(md);
    return md;
  }

  /** The bytes a memory descriptor spans, padding and strides included. */
  private span(md: Ptr): number {
    return Number(this.lib.dnnl_memory_desc_get_size(md));
  }

  /** A created oneDNN object, destroyed with the op being made. */
  private own(out: BigUint64Array, destroy: (p: Ptr) => number): Ptr {
    const p = Deno.UnsafePointer.create(out[0]);
    this.owned.destroy.push(() => destroy(p));
    return p;
  }

  private memory(md: Ptr): Ptr {
    const out = new BigUint64Array(1);
    this.check(this.lib.dnnl_memory_create(out, md, this.engine, null), "memory");
    return this.own(out, this.lib.dnnl_memory_destroy);
  }

  private primitiveDesc(opDesc: Uint8Array, attr: Ptr, hint: Ptr, what: string): Ptr {
    const out = new BigUint64Array(1);
    this.check(this.lib.dnnl_primitive_desc_create(out, opDesc, attr, this.engine, hint), what);
    return this.own(out, this.lib.dnnl_primitive_desc_destroy);
  }

  private prepare(pd: Ptr, slots: [number, Ptr][]): Prepared {
    const out = new BigUint64Array(1);
    this.check(this.lib.dnnl_primitive_create(out, pd), "primitive");
    const primitive = this.own(out, this.lib.dnnl_primitive_destroy);
    const info = new BigUint64Array(1);
    this.lib.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO, 0, info);
    const impl = info[0]
      ? new Deno.UnsafePointerView(Deno.UnsafePointer.create(info[0])!).getCString()
      : "?";
    return new Prepared(
      this,
      primitive,
      slots.map(([arg, md]) => ({ arg, memory: this.memory(md) })),
      impl,
    );
  }

  /** A reorder between two layouts of the same tensor, with its scratch. */
  private reorder(from: Ptr, to: Ptr, scratchMd: Ptr): Reorder {
    const out = new BigUint64Array(1);
    this.check(
      this.lib.dnnl_reorder_primitive_desc_create(out, from, this.engine, to, this.engine, null),
      "reorder",
    );
    const pd = this.own(out, this.lib.dnnl_primitive_desc_destroy);
    const prepared = this.prepare(pd, [[ARG_SRC, from], [ARG_DST, to]]);
    const bytes = this.span(scratchMd);
    return { prepared, scratch: new Float32Array(Math.ceil(bytes / 4) + 16) };
  }

  private attr(activation: NativeActivation): Ptr {
    if (activation === "linear") return null;
    const out = new BigUint64Array(1);
    this.check(this.lib.dnnl_post_ops_create(out), "post-ops");
    const ops = this.own(out, this.lib.dnnl_post_ops_destroy);
    this.check(
      activation === "relu6"
        ? this.lib.dnnl_post_ops_append_eltwise(ops, 1, ELTWISE_CLIP, 0, 6)
        : this.lib.dnnl_post_ops_append_eltwise(ops, 1, ELTWISE_RELU, 0, 0),
      "post-ops",
    );
    this.check(this.lib.dnnl_primitive_attr_create(out), "attribute");
    const attr = this.own(out, this.lib.dnnl_primitive_attr_destroy);
    this.check(this.lib.dnnl_primitive_attr_set_post_ops(attr, ops), "attribute");
    return attr;
  }

  private convDescs(g: ConvGeometry) {
    const [srcDims, srcStrides] = nhwc(g.inShape);
    const [dstDims, dstStrides] = nhwc(g.outShape);
    const [wDims, wStrides] = g.depthwise ? depthwiseFilter(g.filterShape) : hwio(g.filterShape);
    const geo = {
      src: this.md(srcDims, srcStrides),
      dst: this.md(dstDims, dstStrides),
      userW: this.md(wDims, wStrides),
      anyW: this.md(wDims),
      strides: dims(g.strides),
      dilations: dims([g.dilations[0] - 1, g.dilations[1] - 1]),
      padL: dims([g.pads[0], g.pads[2]]),
      padR: dims([g.pads[1], g.pads[3]]),
    };
    this.owned.keep.push(geo);
    return geo;
  }

  private forwardDesc(g: ConvGeometry, bias: boolean, activation: NativeActivation) {
    const d = this.convDescs(g);
    const biasMd = bias ? this.md([g.outShape[3]], [1]) : null;
    const op = this.opDesc();
    this.check(
      this.lib.dnnl_dilated_convolution_forward_desc_init(
        op,
        FORWARD_TRAINING,
        CONV_DIRECT,
        d.src,
        d.anyW,
        biasMd,
        d.dst,
        d.strides,
        d.dilations,
        d.padL,
        d.padR,
      ),
      "convolution descriptor",
    );
    const pd = this.primitiveDesc(op, this.attr(activation), null, "convolution");
    return { d, pd, biasMd };
  }

  /** The op made for this kind and geometry, made on first use. */
  private cached<T extends NativeOp>(kind: string, g: object, make: () => T): T {
    const key = kind + JSON.stringify(g);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // most recently used goes last
      this.cache.set(key, hit);
      return hit.op as T;
    }
    const owned: Owned = { destroy: [], keep: [] };
    this.owned = owned;
    let op: T;
    try {
      op = make();
    } catch (err) {
      this.release(owned);
      throw err;
    }
    this.cache.set(key, { op, owned });
    this.evict();
    return op;
  }

  /** An op descriptor's storage, kept alive with the primitives. */
  private opDesc(): Uint8Array {
    const op = new Uint8Array(OP_DESC_BYTES);
    this.owned.keep.push(op);
    return op;
  }

  /**
   * What a filter in the user's layout becomes for a primitive that picked
   * `wMd`: itself, or its reordered copy in a scratch buffer.
   *
   * The reorder is a full pass over the weights on every call: a third of a
   * 224x224 ResNet-50 forward pass at batch 1 here. Explaining a model runs
   * the same weights again and again, so the copies of the last few filters
   * are kept, by their tensor's data id (tfjs never changes the data behind
   * an id; a variable assigned a new value gets a new id). A filter comes back
   * to the copy it left only when it is seen a second time, so training,
   * whose weights are new tensors at every step, keeps the one scratch buffer
   * it always had.
   */
  private filterFor(userW: Uint8Array, wMd: Ptr): (filter: Ptr, key?: object) => Ptr {
    if (this.lib.dnnl_memory_desc_equal(ptr(userW), wMd)) return (filter) => filter;
    const reorder = this.reorder(ptr(userW), wMd, wMd);
    // Most recently used first.
    const copies: { key?: object; scratch: Float32Array }[] = [{ scratch: reorder.scratch }];
    const seen: object[] = [];
    return (filter, key) => {
      const at = key ? copies.findIndex((c) => c.key === key) : -1;
      if (at >= 0) {
        const [hit] = copies.splice(at, 1);
        copies.unshift(hit);
        return ptr(hit.scratch);
      }
      const again = key !== undefined && seen.includes(key);
      const slot = again && copies.length < FILTER_COPIES
        ? { scratch: new Float32Array(reorder.scratch.length) }
        : copies.pop()!;
      reorder.prepared.run([filter, ptr(slot.scratch)]);
      slot.key = key;
      copies.unshift(slot);
      if (key && !again) {
        seen.unshift(key);
        if (seen.length > 2 * FILTER_COPIES) seen.pop();
      }
      return ptr(slot.scratch);
    };
  }

  /** The forward convolution for this geometry (made once, then cached). */
  convForward(g: ConvGeometry, bias: boolean, activation: NativeActivation): ConvForward {
    return this.cached("fwd", { g, bias, activation }, () => {
      const { d, pd, biasMd } = this.forwardDesc(g, bias, activation);
      const wMd = this.lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0);
      const slots: [number, Ptr][] = [
        [ARG_SRC, ptr(d.src)],
        [ARG_WEIGHTS, wMd],
        [ARG_DST, ptr(d.dst)],
      ];
      if (biasMd) slots.push([ARG_BIAS, ptr(biasMd)]);
      const prepared = this.prepare(pd, slots);
      const filterFor = this.filterFor(d.userW, wMd);
      return {
        impl: prepared.impl,
        spans: [
          this.span(ptr(d.src)),
          this.span(ptr(d.userW)),
          biasMd ? this.span(ptr(biasMd)) : 0,
          this.span(ptr(d.dst)),
        ],
        run: (x, filter, biasPtr, out, key) =>
          prepared.run(
            biasMd ? [x, filterFor(filter, key), out, biasPtr] : [x, filterFor(filter, key), out],
          ),
      };
    });
  }

  /** The input gradient of a convolution (dy -> dx). */
  convBackwardData(g: ConvGeometry): ConvBackwardData {
    return this.cached("bwd-data", g, () => {
      const fwd = this.forwardDesc(g, false, "linear");
      const d = fwd.d;
      const op = this.opDesc();
      this.check(
        this.lib.dnnl_dilated_convolution_backward_data_desc_init(
          op,
          CONV_DIRECT,
          d.src,
          d.anyW,
          d.dst,
          d.strides,
          d.dilations,
          d.padL,
          d.padR,
        ),
        "convolution backward-data descriptor",
      );
      const pd = this.primitiveDesc(op, null, fwd.pd, "convolution backward data");
      const wMd = this.lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0);
      const prepared = this.prepare(pd, [
        [ARG_DIFF_DST, ptr(d.dst)],
        [ARG_WEIGHTS, wMd],
        [ARG_DIFF_SRC, ptr(d.src)],
      ]);
      const filterFor = this.filterFor(d.userW, wMd);
      return {
        impl: prepared.impl,
        spans: [this.span(ptr(d.dst)), this.span(ptr(d.userW)), this.span(ptr(d.src))],
        run: (dy, filter, dx, key) => prepared.run([dy, filterFor(filter, key), dx]),
      };
    });
  }

  /** The filter gradient of a convolution (x, dy -> dfilter). */
  convBackwardWeights(geometry: ConvGeometry): ConvBackwardWeights {
    return this.cached("bwd-weights", geometry, () => {
      // oneDNN 2.x's 1x1 filter-gradient kernels handle a stride above 1 by
      // copying the sampled input into a per-thread workspace ("reduce to
      // unit stride") at offsets that assume a whole block of input channels;
      // with NHWC and fewer channels than a block (16 on AVX-512, 8 on AVX2)
      // they write past it and corrupt the heap (oneDNN issue 6035). Here the
      // sampling is a reorder into a scratch of our own, sized by oneDNN's
      // descriptor, and the gradient a stride-1 one, which needs no workspace.
      let sampled = unitStride(geometry);
      let view: Uint8Array | null = null;
      if (sampled) {
        try {
          view = this.md(nhwc(sampled.geometry.inShape)[0], sampled.view);
        } catch {
          // oneDNN takes a view whose rows or columns end short of the
          // next sample (a size the stride does not divide) for overlapping
          // and refuses it. Then only a whole channel block is safe.
          if (geometry.inShape[3] < RTUS_SAFE_CHANNELS) {
            throw new Error(
              `1x1 stride-${geometry.strides.join("x")} filter gradient over ` +
                `${geometry.inShape.slice(1, 3).join("x")} with ${geometry.inShape[3]} input ` +
                `channels: oneDNN 2.x overruns its workspace there (oneDNN issue 6035)`,
            );
          }
          sampled = null;
        }
      }
      const g = sampled?.geometry ?? geometry;
      const fwd = this.forwardDesc(g, false, "linear");
      const d = fwd.d;
      const op = this.opDesc();
      this.check(
        this.lib.dnnl_dilated_convolution_backward_weights_desc_init(
          op,
          CONV_DIRECT,
          d.src,
          d.anyW,
          null,
          d.dst,
          d.strides,
          d.dilations,
          d.padL,
          d.padR,
        ),
        "convolution backward-weights descriptor",
      );
      const pd = this.primitiveDesc(op, null, fwd.pd, "convolution backward weights");
      const wMd = this.lib.dnnl_primitive_desc_query_md(pd, QUERY_DIFF_WEIGHTS_MD, 0);
      const prepared = this.prepare(pd, [
        [ARG_SRC, ptr(d.src)],
        [ARG_DIFF_DST, ptr(d.dst)],
        [ARG_DIFF_WEIGHTS, wMd],
      ]);
      let source = (x: Ptr) => x;
      let xSpan = this.span(ptr(d.src));
      if (sampled && view) {
        const [viewDims] = nhwc(g.inShape);
        const steps = sampled.view;
        const sample = this.reorder(ptr(view), ptr(d.src), ptr(d.src));
        const scratch = ptr(sample.scratch);
        // oneDNN sizes a strided descriptor as its largest dims x stride
        // product, past the last element it reads; what it reads ends at
        // the last sampled element.
        xSpan = 4 * (1 + viewDims.reduce((sum, d, i) => sum + (d - 1) * steps[i], 0));
        source = (x) => {
          sample.prepared.run([x, scratch]);
          return scratch;
        };
      }
      const spans = [xSpan, this.span(ptr(d.dst)), this.span(ptr(d.userW))];
      if (this.lib.dnnl_memory_desc_equal(ptr(d.userW), wMd)) {
        return {
          impl: prepared.impl,
          spans,
          run: (x, dy, dw) => prepared.run([source(x), dy, dw]),
        };
      }
      // The primitive writes its own layout; reorder from there to the user's.
      const reorder = this.reorder(wMd, ptr(d.userW), wMd);
      const scratch = ptr(reorder.scratch);
      return {
        impl: prepared.impl,
        spans,
        run: (x, dy, dw) => {
          prepared.run([source(x), dy, scratch]);
          reorder.prepared.run([scratch, dw]);
        },
      };
    });
  }

  /**
   * The gradient of a max pool: the forward pool runs again (in training mode,
   * so it records where each maximum is), then its backward pass routes dy.
   */
  maxPoolBackward(g: PoolGeometry): MaxPoolBackward {
    return this.cached("maxpool-bwd", g, () => {
      const [srcDims, srcStrides] = nhwc(g.inShape);
      const [dstDims, dstStrides] = nhwc(g.outShape);
      const src = this.md(srcDims, srcStrides), dst = this.md(dstDims, dstStrides);
      const geo = [
        dims(g.strides),
        dims(g.kernel),
        dims([0, 0]),
        dims([g.pads[0], g.pads[2]]),
        dims([g.pads[1], g.pads[3]]),
      ] as const;
      this.owned.keep.push(geo);
      const fwdDesc = this.opDesc(), bwdDesc = this.opDesc();
      this.check(
        this.lib.dnnl_pooling_v2_forward_desc_init(
          fwdDesc,
          FORWARD_TRAINING,
          POOLING_MAX,
          src,
          dst,
          ...geo,
        ),
        "pooling descriptor",
      );
      const fwdPd = this.primitiveDesc(fwdDesc, null, null, "pooling");
      const ws = this.lib.dnnl_primitive_desc_query_md(fwdPd, QUERY_WORKSPACE_MD, 0);
      this.check(
        this.lib.dnnl_pooling_v2_backward_desc_init(bwdDesc, POOLING_MAX, src, dst, ...geo),
        "pooling backward descriptor",
      );
      const bwdPd = this.primitiveDesc(bwdDesc, null, fwdPd, "pooling backward");
      const fwd = this.prepare(fwdPd, [
        [ARG_SRC, ptr(src)],
        [ARG_DST, ptr(dst)],
        [ARG_WORKSPACE, ws],
      ]);
      const bwd = this.prepare(bwdPd, [
        [ARG_DIFF_DST, ptr(dst)],
        [ARG_WORKSPACE, ws],
        [ARG_DIFF_SRC, ptr(src)],
      ]);
      // Scratch for the recomputed pool and its workspace; kept alive here
      // since only their addresses are held.
      const pooledBuffer = new Float32Array(this.span(ptr(dst)) / 4);
      const wsBuffer = new Uint8Array(this.span(ws) + 64);
      this.owned.keep.push(pooledBuffer, wsBuffer);
      const pooled = ptr(pooledBuffer), workspace = ptr(wsBuffer);
      return {
        impl: `${fwd.impl} + ${bwd.impl}`,
        spans: [this.span(ptr(src)), this.span(ptr(dst)), this.span(ptr(src))],
        run: (x, dy, dx) => {
          fwd.run([x, pooled, workspace]);
          bwd.run([dy, workspace, dx]);
        },
      };
    });
  }

  /** The ReLU gradient over `n` contiguous values (one pass, every core). */
  reluBackward(n: number): ReluBackward {
    return this.eltwiseBackward(n, ELTWISE_RELU, 0, 0);
  }

  /**
   * The gradient of a clip to `[lo, hi]` (dy where `lo <= x <= hi`, else 0):
   * oneDNN's clip backward passes dy where `alpha < x <= beta`, so alpha is
   * the float just below lo.
   */
  clipBackward(n: number, lo: number, hi: number): ReluBackward {
    return this.eltwiseBackward(n, ELTWISE_CLIP, floatBelow(lo), hi);
  }

  private eltwiseBackward(n: number, alg: number, alpha: number, beta: number): ReluBackward {
    return this.cached("eltwise-bwd", { n, alg, alpha, beta }, () => {
      const md = this.md([n], [1]);
      const fwdDesc = this.opDesc(), bwdDesc = this.opDesc();
      this.check(
        this.lib.dnnl_eltwise_forward_desc_init(fwdDesc, FORWARD_TRAINING, alg, md, alpha, beta),
        "eltwise descriptor",
      );
      const fwdPd = this.primitiveDesc(fwdDesc, null, null, "eltwise");
      this.check(
        this.lib.dnnl_eltwise_backward_desc_init(bwdDesc, alg, md, md, alpha, beta),
        "eltwise backward descriptor",
      );
      const pd = this.primitiveDesc(bwdDesc, null, fwdPd, "eltwise backward");
      const m = ptr(md);
      const prepared = this.prepare(pd, [[ARG_SRC, m], [ARG_DIFF_DST, m], [ARG_DIFF_SRC, m]]);
      const n4 = this.span(m);
      return {
        impl: prepared.impl,
        spans: [n4, n4, n4],
        run: (x, dy, dx) => prepared.run([x, dy, dx]),
      };
    });
  }

  /** A batched matrix product (batch broadcast where one side has batch 1). */
  matMul(g: MatMulGeometry): MatMulOp {
    return this.cached("matmul", g, () => {
      const { batchA, batchB, m, k, n } = g;
      const a = this.md([batchA, m, k], g.transposeA ? [m * k, 1, m] : [m * k, k, 1]);
      const b = this.md([batchB, k, n], g.transposeB ? [k * n, 1, k] : [k * n, n, 1]);
      const c = this.md([Math.max(batchA, batchB), m, n], [m * n, n, 1]);
      const bias = g.bias ? this.md([1, 1, n], [n, n, 1]) : null;
      const op = this.opDesc();
      this.check(this.lib.dnnl_matmul_desc_init(op, a, b, bias, c), "matmul descriptor");
      const pd = this.primitiveDesc(op, this.attr(g.activation), null, "matmul");
      const slots: [number, Ptr][] = [[ARG_SRC, ptr(a)], [ARG_WEIGHTS, ptr(b)], [ARG_DST, ptr(c)]];
      if (bias) slots.push([ARG_BIAS, ptr(bias)]);
      const prepared = this.prepare(pd, slots);
      return {
        impl: prepared.impl,
        spans: [
          this.span(ptr(a)),
          this.span(ptr(b)),
          bias ? this.span(ptr(bias)) : 0,
          this.span(ptr(c)),
        ],
        run: (pa, pb, pbias, out) => prepared.run(bias ? [pa, pb, out, pbias] : [pa, pb, out]),
      };
    });
  }
}

let opened: OneDnn | string | undefined;

/** The library, opened on first use; a string says why it is not available. */
export function oneDnn(): OneDnn | string {
  if (opened === undefined) opened = OneDnn.open();
  return opened;
}

/**
 * The largest float32 below `v` rounded to float32 (tfjs compares float32
 * tensors with their bounds as float32 scalars): `s > floatBelow(lo)` holds
 * exactly when `s >= lo` for every float32 s.
 */
function floatBelow(v: number): number {
  if (Number.isNaN(v) || v === -Infinity) return v;
  if (v === Infinity) return 3.4028234663852886e38;
  const f = new Float32Array([v]);
  const bits = new Int32Array(f.buffer);
  if (f[0] === 0) bits[0] = 0x80000001 | 0; // the smallest negative subnormal
  else if (f[0] > 0) bits[0] -= 1;
  else bits[0] += 1;
  return f[0];
}
