/**
 * The image-warp kernels of `core/images/warp_kernel.ts` for the WASM and CPU
 * backends, run straight on each backend's memory: on WASM, hot loops in
 * WebAssembly SIMD (`warp_simd.wat`) on the backend's own heap; on the CPU
 * backend (and where SIMD is missing), the same steps in plain JS, which the
 * tests hold the SIMD loops to.
 *
 * Why not tfjs's own kernels: on WASM, `CropAndResize`, `Transform` and
 * `GatherV2` are single-threaded scalar loops, far behind torchvision and
 * OpenCV (a 64-image random resized crop took 140 ms in `CropAndResize`, an
 * affine warp 500 ms in `Transform`, a lens distortion's four gathers about
 * 4 s), and two of them are wrong in tfjs 4.22 (`CropAndResize` on WASM loses
 * the shift of a box that starts at row 0; `Transform` on the CPU backend
 * warps only the first image). No image library works on tensors in place on
 * the WASM heap; oneDNN's linear resampling was tried for crops and lost to
 * the SIMD loops here (its per-shape primitive creation costs more than the
 * resize itself under random crop sizes).
 *
 * Per image, the fastest path that gives the kernel's answer (bilinear at
 * input index coordinates, 0 outside the input):
 * - a whole-pixel shift or mirror (flips, the identity): rows copied,
 *   reversed for mirrors, bit-exact;
 * - a scale and shift (crops, scale augmentation): separable bilinear, each
 *   source row resampled along x once, pairs of those rows blended;
 * - any other affine map, and grids (lens distortion): bilinear per pixel.
 *
 * Off with `CONVLENS_STOCK_WASM=1` (the stock-tfjs baseline of the benchmarks).
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { SAMPLE_GRID_KERNEL, WARP_AFFINE_KERNEL } from "../core/images/warp_kernel.ts";
import type { KernelArgs, TensorInfo, WasmBackend } from "./kernel_types.ts";
import { WARP_SIMD_WASM } from "./_warp_simd.ts";

/**
 * A float32 buffer seen as floats (to compute) and as 32-bit words (to copy
 * bit-exactly), with its byte offset in its memory (for the SIMD loops).
 */
interface Plane {
  f: Float32Array;
  u: Int32Array;
  base: number;
}

function plane(f: Float32Array): Plane {
  return { f, u: new Int32Array(f.buffer, f.byteOffset, f.length), base: f.byteOffset };
}

/** The exports of `warp_simd.wat` (byte addresses in the WASM heap). */
interface Simd {
  copy(src: number, dst: number, bytes: number): void;
  mirror3(src: number, dst: number, n: number, tmp: number): void;
  hrow(row: number, out: number, taps: number, cols: number, step: number, end: number): void;
  hrow_fast(row: number, out: number, taps: number, cols: number, step: number): void;
  blend(a: number, b: number, p: number, q: number, dst: number, len: number): void;
}

/** What speeds a batch up on WASM: the SIMD loops, with their scratch on the heap. */
interface Accel {
  simd?: Simd;
  /** Heap scratch: the separable path's taps and two rows, or a mirror's row. */
  scratch?: Plane;
}

/** Where one image lives in its batch, and its geometry. */
interface Image {
  p: Plane;
  /** Offset of the image's first value. */
  at: number;
  h: number;
  w: number;
  c: number;
}

/** Near a whole number, within float rounding of map arithmetic. */
function whole(v: number): boolean {
  return Math.abs(v - Math.round(v)) < 1e-6;
}

/** Whole-pixel shift and/or mirror: rows copied (reversed for a mirror). */
function copyShift(
  src: Image,
  dst: Image,
  m: readonly number[],
  simd?: Simd,
  scratch?: Plane,
): void {
  const { h, w, c } = src, H = dst.h, W = dst.w;
  const sx = m[0], tx = Math.round(m[2]), sy = m[4], ty = Math.round(m[5]);
  // Columns j with a source column sx j + tx inside [0, w).
  const j0 = Math.max(0, sx > 0 ? -tx : tx - w + 1);
  const j1 = Math.min(W, sx > 0 ? w - tx : tx + 1);
  const s = src.p.u, d = dst.p.u;
  for (let i = 0; i < H; i++) {
    const y = sy * i + ty;
    const row = dst.at + i * W * c;
    if (y < 0 || y >= h || j1 <= j0) {
      d.fill(0, row, row + W * c);
      continue;
    }
    const srow = src.at + y * w * c;
    if (sx > 0 && sy > 0 && j0 === 0 && j1 === W && W === w) {
      // Whole rows in order: the rest of the rows that stay inside, in one copy.
      const last = Math.min(H, h - ty);
      if (simd) simd.copy(src.p.base + 4 * srow, dst.p.base + 4 * row, 4 * (last - i) * w * c);
      else d.set(s.subarray(srow, srow + (last - i) * w * c), row);
      i = last - 1;
      continue;
    }
    if (j0 > 0) d.fill(0, row, row + j0 * c);
    if (j1 < W) d.fill(0, row + j1 * c, row + W * c);
    if (sx > 0 && simd) {
      simd.copy(
        src.p.base + 4 * (srow + (j0 + tx) * c),
        dst.p.base + 4 * (row + j0 * c),
        4 * (j1 - j0) * c,
      );
    } else if (sx > 0) {
      d.set(s.subarray(srow + (j0 + tx) * c, srow + (j1 + tx) * c), row + j0 * c);
    } else if (c === 3 && simd && scratch) {
      // Source columns tx - j1 + 1 .. tx, reversed into j0 .. j1 - 1.
      const from = src.p.base + 4 * (srow + (tx - j1 + 1) * 3);
      simd.mirror3(from, dst.p.base + 4 * (row + j0 * 3), j1 - j0, scratch.base);
    } else if (c === 3) {
      // Two pixels a turn, read before written.
      let o = row + j0 * 3, k = srow + (tx - j0) * 3;
      const end = srow + (tx - j1) * 3;
      for (; k - 3 > end; k -= 6, o += 6) {
        const r0 = s[k], g0 = s[k + 1], b0 = s[k + 2], r1 = s[k - 3], g1 = s[k - 2], b1 = s[k - 1];
        d[o] = r0, d[o + 1] = g0, d[o + 2] = b0, d[o + 3] = r1, d[o + 4] = g1, d[o + 5] = b1;
      }
      if (k > end) d[o] = s[k], d[o + 1] = s[k + 1], d[o + 2] = s[k + 2];
    } else {
      for (let j = j0; j < j1; j++) {
        const o = row + j * c, k = srow + (tx - j) * c;
        for (let q = 0; q < c; q++) d[o + q] = s[k + q];
      }
    }
  }
}

/**
 * The horizontal taps of a scale-and-shift map: for each output column j,
 * the two source columns it blends (clamped inside) and their weights (0 for
 * a column outside the image).
 */
function columnTaps(
  m: readonly number[],
  W: number,
  w: number,
  each: (j: number, xa: number, xb: number, wa: number, wb: number) => void,
): void {
  for (let j = 0; j < W; j++) {
    const x = m[0] * j + m[2];
    const x0 = Math.floor(x), f = x - x0;
    each(
      j,
      Math.min(Math.max(x0, 0), w - 1),
      Math.min(Math.max(x0 + 1, 0), w - 1),
      x0 >= 0 && x0 < w ? 1 - f : 0,
      x0 + 1 >= 0 && x0 + 1 < w ? f : 0,
    );
  }
}

/**
 * The vertical half of a separable resize. Per output row i, source rows y0
 * and y0 + 1 weigh p and q (0 outside the image); each source row is
 * resampled along x once, into one of two slots (`resample(r, slot)`), and
 * `blend(i, a, p, b, q)` combines the slots (b = a and q = 0 where one row
 * counts); `blank(i)` where none does.
 */
function blendRows(
  m: readonly number[],
  H: number,
  h: number,
  resample: (r: number, slot: number) => void,
  blend: (i: number, a: number, p: number, b: number, q: number) => void,
  blank: (i: number) => void,
): void {
  const keys = [-1, -1];
  // The slot holding source row r, resampled into the slot not holding `keep` if need be.
  const fetch = (r: number, keep: number): number => {
    const hit = keys[0] === r ? 0 : keys[1] === r ? 1 : -1;
    if (hit >= 0) return hit;
    const slot = keys[0] === keep ? 1 : 0;
    keys[slot] = r;
    resample(r, slot);
    return slot;
  };
  for (let i = 0; i < H; i++) {
    const y = m[4] * i + m[5];
    const y0 = Math.floor(y), fy = y - y0;
    const p = y0 >= 0 && y0 < h ? 1 - fy : 0;
    const q = y0 + 1 >= 0 && y0 + 1 < h ? fy : 0;
    if (p === 0 && q === 0) {
      blank(i);
    } else if (q === 0) {
      const a = fetch(y0, -2);
      blend(i, a, p, a, 0);
    } else if (p === 0) {
      const b = fetch(y0 + 1, -2);
      blend(i, b, q, b, 0);
    } else {
      const a = fetch(y0, y0 + 1);
      blend(i, a, p, fetch(y0 + 1, y0), q);
    }
  }
}

/** Separable bilinear (a scale and shift per axis), in JS. */
function separable(src: Image, dst: Image, m: readonly number[]): void {
  const { h, w, c } = src, H = dst.h, W = dst.w;
  const xa = new Int32Array(W), xb = new Int32Array(W);
  const wa = new Float64Array(W), wb = new Float64Array(W);
  columnTaps(m, W, w, (j, a, b, p, q) => {
    xa[j] = a * c, xb[j] = b * c, wa[j] = p, wb[j] = q;
  });
  const s = src.p.f, d = dst.p.f;
  const len = W * c;
  const rows = [new Float64Array(len), new Float64Array(len)];
  const resample = (r: number, slot: number) => {
    const out = rows[slot], base = src.at + r * w * c;
    if (c === 3) {
      for (let j = 0, o = 0; j < W; j++, o += 3) {
        const a = base + xa[j], b = base + xb[j], p = wa[j], q = wb[j];
        out[o] = s[a] * p + s[b] * q;
        out[o + 1] = s[a + 1] * p + s[b + 1] * q;
        out[o + 2] = s[a + 2] * p + s[b + 2] * q;
      }
    } else {
      for (let j = 0, o = 0; j < W; j++, o += c) {
        const a = base + xa[j], b = base + xb[j], p = wa[j], q = wb[j];
        for (let k = 0; k < c; k++) out[o + k] = s[a + k] * p + s[b + k] * q;
      }
    }
  };
  const blend = (i: number, ka: number, p: number, kb: number, q: number) => {
    const a = rows[ka], b = rows[kb], o = dst.at + i * len;
    if (q === 0) { for (let k = 0; k < len; k++) d[o + k] = a[k] * p; }
    else for (let k = 0; k < len; k++) d[o + k] = a[k] * p + b[k] * q;
  };
  blendRows(m, H, h, resample, blend, (i) => d.fill(0, dst.at + i * len, dst.at + (i + 1) * len));
}

/**
 * {@linkcode separable} with its two inner loops in WebAssembly SIMD (c <= 4):
 * the taps and the two resampled rows live in heap scratch.
 */
function separableSimd(
  src: Image,
  dst: Image,
  m: readonly number[],
  simd: Simd,
  scratch: Plane,
): void {
  const { h, w, c } = src, H = dst.h, W = dst.w;
  const f = scratch.f, u = scratch.u;
  columnTaps(m, W, w, (j, a, b, p, q) => {
    u[4 * j] = a * c * 4, u[4 * j + 1] = b * c * 4, f[4 * j + 2] = p, f[4 * j + 3] = q;
  });
  const taps = scratch.base, len = W * c;
  const rowBytes = 4 * (len + 4);
  const rows = [taps + 16 * W, taps + 16 * W + rowBytes];
  const end = src.p.base + 4 * src.p.f.length;
  const resample = (r: number, slot: number) => {
    const start = src.p.base + 4 * (src.at + r * w * c);
    // Only a row whose last pixel ends within 16 bytes of the tensor's end
    // needs the checked loads.
    if (start + 4 * w * c + 16 <= end) simd.hrow_fast(start, rows[slot], taps, W, 4 * c);
    else simd.hrow(start, rows[slot], taps, W, 4 * c, end);
  };
  const blend = (i: number, a: number, p: number, b: number, q: number) =>
    simd.blend(rows[a], rows[b], p, q, dst.p.base + 4 * (dst.at + i * len), len);
  const blank = (i: number) => dst.p.f.fill(0, dst.at + i * len, dst.at + (i + 1) * len);
  blendRows(m, H, h, resample, blend, blank);
}

/**
 * Scratch floats the SIMD paths need: {@linkcode separableSimd}'s taps and
 * rows for the output width, a mirror's copy of an input row.
 */
function simdScratchFloats(w: number, W: number, c: number): number {
  return Math.max(4 * W + 2 * (W * c + 4), w * c + 4);
}

/** Bilinear value of the image at (x, y) into dst[o..o+c), 0 outside. */
function sampleAt(src: Image, x: number, y: number, d: Float32Array, o: number): void {
  const { h, w, c } = src, s = src.p.f;
  const x0 = Math.floor(x), y0 = Math.floor(y);
  const fx = x - x0, fy = y - y0;
  if (x0 >= 0 && y0 >= 0 && x0 < w - 1 && y0 < h - 1) {
    const a = src.at + (y0 * w + x0) * c, b = a + w * c;
    const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    if (c === 3) {
      d[o] = w00 * s[a] + w01 * s[a + 3] + w10 * s[b] + w11 * s[b + 3];
      d[o + 1] = w00 * s[a + 1] + w01 * s[a + 4] + w10 * s[b + 1] + w11 * s[b + 4];
      d[o + 2] = w00 * s[a + 2] + w01 * s[a + 5] + w10 * s[b + 2] + w11 * s[b + 5];
    } else {
      for (let k = 0; k < c; k++) {
        d[o + k] = w00 * s[a + k] + w01 * s[a + c + k] + w10 * s[b + k] + w11 * s[b + c + k];
      }
    }
    return;
  }
  for (let k = 0; k < c; k++) d[o + k] = 0;
  if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) return;
  // On the border: each tap that is inside counts.
  for (let t = 0; t < 4; t++) {
    const xi = x0 + (t & 1), yi = y0 + (t >> 1);
    if (xi < 0 || yi < 0 || xi >= w || yi >= h) continue;
    const wt = (t & 1 ? fx : 1 - fx) * (t >> 1 ? fy : 1 - fy);
    if (wt === 0) continue;
    const a = src.at + (yi * w + xi) * c;
    for (let k = 0; k < c; k++) d[o + k] += wt * s[a + k];
  }
}

function general(src: Image, dst: Image, m: readonly number[]): void {
  const H = dst.h, W = dst.w;
  const [m0, m1, m2, m3, m4, m5] = m;
  const xs = new Float64Array(W), ys = new Float64Array(W);
  for (let i = 0; i < H; i++) {
    const bx = m1 * i + m2, by = m4 * i + m5;
    for (let j = 0; j < W; j++) xs[j] = m0 * j + bx, ys[j] = m3 * j + by;
    sampleRow(src, dst.p.f, dst.at + i * W * src.c, xs, ys, 0, W);
  }
}

/**
 * W output pixels from `o` on: pixel j samples (xs[from + j], ys[from + j]).
 * The interior of a 3-channel image is inline; a call per pixel cost twice
 * the arithmetic (a WebAssembly SIMD version of this loop was no faster than
 * V8's code for it).
 */
function sampleRow(
  src: Image,
  d: Float32Array,
  o: number,
  xs: Float32Array | Float64Array,
  ys: Float32Array | Float64Array,
  from: number,
  W: number,
): void {
  const { h, w, c } = src;
  const s = src.p.f, at = src.at, row = w * c;
  for (let j = from, end = from + W; j < end; j++, o += c) {
    const x = xs[j], y = ys[j];
    const x0 = Math.floor(x), y0 = Math.floor(y);
    if (c === 3 && x0 >= 0 && y0 >= 0 && x0 < w - 1 && y0 < h - 1) {
      const fx = x - x0, fy = y - y0;
      const a = at + y0 * row + x0 * 3, b = a + row;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      d[o] = w00 * s[a] + w01 * s[a + 3] + w10 * s[b] + w11 * s[b + 3];
      d[o + 1] = w00 * s[a + 1] + w01 * s[a + 4] + w10 * s[b + 1] + w11 * s[b + 4];
      d[o + 2] = w00 * s[a + 2] + w01 * s[a + 5] + w10 * s[b + 2] + w11 * s[b + 5];
    } else {
      sampleAt(src, x, y, d, o);
    }
  }
}

/** Warps every image of `src` into `dst` under its map. */
function warpBatch(
  src: Plane,
  dst: Plane,
  shape: readonly number[],
  maps: readonly number[],
  H: number,
  W: number,
  accel: Accel = {},
): void {
  const [n, h, w, c] = shape;
  const { simd, scratch } = accel;
  for (let k = 0; k < n; k++) {
    const m = maps.slice(6 * k, 6 * k + 6);
    const s: Image = { p: src, at: k * h * w * c, h, w, c };
    const d: Image = { p: dst, at: k * H * W * c, h: H, w: W, c };
    if (m[1] !== 0 || m[3] !== 0) {
      general(s, d, m);
    } else if (Math.abs(m[0]) === 1 && Math.abs(m[4]) === 1 && whole(m[2]) && whole(m[5])) {
      copyShift(s, d, m, simd, scratch);
    } else if (simd && scratch && c <= 4) {
      separableSimd(s, d, m, simd, scratch);
    } else {
      separable(s, d, m);
    }
  }
}

function sampleGridBatch(
  src: Plane,
  gx: Float32Array,
  gy: Float32Array,
  dst: Plane,
  shape: readonly number[],
  H: number,
  W: number,
): void {
  const [n, h, w, c] = shape;
  for (let k = 0; k < n; k++) {
    const s: Image = { p: src, at: k * h * w * c, h, w, c };
    for (let i = 0; i < H; i++) {
      const first = (k * H + i) * W;
      sampleRow(s, dst.f, first * c, gx, gy, first, W);
    }
  }
}

function checkMaps(x: TensorInfo, maps: readonly number[]): void {
  if (x.shape.length !== 4 || maps.length !== 6 * x.shape[0]) {
    throw new RangeError(
      `${WARP_AFFINE_KERNEL}: ${maps.length / 6} maps for images of shape [${x.shape}]; ` +
        "give one map of 6 numbers per image of an [n, h, w, c] batch",
    );
  }
}

function checkGrid(x: TensorInfo, gx: TensorInfo, gy: TensorInfo): [number, number] {
  const [n] = x.shape;
  const ok = x.shape.length === 4 && gx.shape.length === 3 && gx.shape[0] === n &&
    gx.shape.join() === gy.shape.join();
  if (!ok) {
    throw new RangeError(
      `${SAMPLE_GRID_KERNEL}: grids of shapes [${gx.shape}] and [${gy.shape}] for images ` +
        `[${x.shape}]; give both as [n, height, width] with the images' n`,
    );
  }
  return [gx.shape[1], gx.shape[2]];
}

/** What a backend gives the kernels: float views of its tensors and new outputs. */
interface Memory {
  /** A new float32 output; the views of inputs are taken after it. */
  output(shape: number[]): TensorInfo;
  view(info: TensorInfo): Float32Array;
}

function wasmMemory(backend: WasmBackend): Memory {
  return {
    output: (shape) => backend.makeOutput(shape, "float32"),
    view: (info) => {
      const size = info.shape.reduce((a, b) => a * b, 1);
      return new Float32Array(
        backend.wasm.HEAPU8.buffer,
        backend.getMemoryOffset(info.dataId),
        size,
      );
    },
  };
}

/** The parts of tfjs-backend-cpu's `MathBackendCPU` the kernels use. */
interface CpuBackend {
  data: { get(dataId: unknown): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): TensorInfo;
}

/** The CPU kernels: outputs are filled in new arrays, then handed to the backend. */
function cpuKernels(): [tf.KernelFunc, tf.KernelFunc] {
  const values = (b: CpuBackend, info: TensorInfo) => b.data.get(info.dataId).values;
  const warp = ({ inputs, backend, attrs }: KernelArgs) => {
    const b = backend as unknown as CpuBackend, x = inputs.x;
    const maps = attrs.maps as number[];
    checkMaps(x, maps);
    const H = attrs.height as number, W = attrs.width as number;
    const shape = [x.shape[0], H, W, x.shape[3]];
    const out = new Float32Array(shape.reduce((p, q) => p * q, 1));
    warpBatch(plane(values(b, x)), plane(out), x.shape, maps, H, W);
    return b.makeTensorInfo(shape, "float32", out);
  };
  const grid = ({ inputs, backend }: KernelArgs) => {
    const b = backend as unknown as CpuBackend, { x, gx, gy } = inputs;
    const [H, W] = checkGrid(x, gx, gy);
    const shape = [x.shape[0], H, W, x.shape[3]];
    const out = new Float32Array(shape.reduce((p, q) => p * q, 1));
    sampleGridBatch(
      plane(values(b, x)),
      values(b, gx),
      values(b, gy),
      plane(out),
      x.shape,
      H,
      W,
    );
    return b.makeTensorInfo(shape, "float32", out);
  };
  return [warp as unknown as tf.KernelFunc, grid as unknown as tf.KernelFunc];
}

function wasmKernels(): [tf.KernelFunc, tf.KernelFunc] {
  const warp = ({ inputs, backend, attrs }: KernelArgs) => {
    const x = inputs.x, maps = attrs.maps as number[];
    checkMaps(x, maps);
    const H = attrs.height as number, W = attrs.width as number;
    const mem: Memory = wasmMemory(backend);
    const out = mem.output([x.shape[0], H, W, x.shape[3]]);
    const simd = simdOf(backend);
    const temp = simd ? mem.output([simdScratchFloats(x.shape[2], W, x.shape[3])]) : undefined;
    try {
      // Views after every allocation: one may have grown (and moved) the heap.
      warpBatch(plane(mem.view(x)), plane(mem.view(out)), x.shape, maps, H, W, {
        simd,
        scratch: temp && plane(mem.view(temp)),
      });
    } catch (err) {
      backend.disposeData(out.dataId, true);
      throw err;
    } finally {
      if (temp) backend.disposeData(temp.dataId, true);
    }
    return out;
  };
  const grid = ({ inputs, backend }: KernelArgs) => {
    const { x, gx, gy } = inputs;
    const [H, W] = checkGrid(x, gx, gy);
    const mem = wasmMemory(backend);
    const out = mem.output([x.shape[0], H, W, x.shape[3]]);
    sampleGridBatch(
      plane(mem.view(x)),
      mem.view(gx),
      mem.view(gy),
      plane(mem.view(out)),
      x.shape,
      H,
      W,
    );
    return out;
  };
  return [warp as unknown as tf.KernelFunc, grid as unknown as tf.KernelFunc];
}

const instances = new WeakMap<object, Simd | null>();

/**
 * The SIMD loops on this backend's heap (instantiated once per heap), or
 * undefined where WebAssembly SIMD is missing.
 */
function simdOf(backend: WasmBackend): Simd | undefined {
  const memory = (backend.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  if (!memory) return undefined;
  let simd = instances.get(memory);
  if (simd === undefined) {
    try {
      const bytes = Uint8Array.from(atob(WARP_SIMD_WASM), (ch) => ch.charCodeAt(0));
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      simd = instance.exports as unknown as Simd;
    } catch {
      simd = null;
    }
    instances.set(memory, simd);
  }
  return simd ?? undefined;
}

let registered = false;

/**
 * Registers the warp kernels on wasm and cpu (other backends have none, and
 * warps there are composed from stock ops). Safe to call more than once.
 */
export function registerWarpKernels(): void {
  if (registered) return;
  registered = true;
  try {
    if (Deno.env.get("CONVLENS_STOCK_WASM") === "1") return;
  } catch {
    // No --allow-env: the default holds.
  }
  for (
    const [backendName, [warp, grid]] of [["wasm", wasmKernels()], ["cpu", cpuKernels()]] as const
  ) {
    tf.registerKernel({ kernelName: WARP_AFFINE_KERNEL, backendName, kernelFunc: warp });
    tf.registerKernel({ kernelName: SAMPLE_GRID_KERNEL, backendName, kernelFunc: grid });
  }
}
