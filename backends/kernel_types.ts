/**
 * The types every kernel module of `backends/` speaks: what tfjs hands a kernel
 * function, the parts of the WASM backend the kernels reach into, and padding as
 * kernel attributes carry it. tfjs exports none of these in a usable form (the
 * WASM backend's class is private to its package), so they are stated once here.
 *
 * @module
 */
import type { tf } from "../core/tf.ts";

/** A tensor as a kernel sees it: shape, dtype and a handle on its data. */
export type TensorInfo = tf.TensorInfo;

/** The handle of a tensor's data in its backend. */
export type DataId = TensorInfo["dataId"];

/** A kernel's attributes (strides, padding, activation, ...), as tfjs passes them. */
export type Attrs = Record<string, unknown>;

/** A raw pointer for Deno's FFI. */
export type Ptr = Deno.PointerValue;

/**
 * Padding as conv and pool kernels carry it: a mode, one size for every side, or
 * explicit `[before, after]` pairs per dimension.
 */
export type Pad = "same" | "valid" | number | number[][];

/** Padding given as a mode or as one size for every side (no explicit pairs). */
export type UniformPad = Exclude<Pad, number[][]>;

/** The parts of tfjs-backend-wasm's `BackendWasm` the kernels use. */
export interface WasmBackend {
  /** A new tensor on the WASM heap. */
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** Frees a tensor's data (with `force`, whatever its reference count). */
  disposeData(dataId: DataId, force?: boolean): boolean;
  /** Counts one more reference to a tensor's data. */
  incRef(dataId: DataId): void;
  /** A view of a tensor's data on the WASM heap. */
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** The byte offset of a tensor's data on the WASM heap. */
  getMemoryOffset(dataId: DataId): number;
  /** The WASM module, for its heap. */
  wasm: { HEAPU8: Uint8Array };
}

/**
 * What tfjs passes a kernel function. `Input` is `TensorInfo | undefined` for
 * kernels that check which optional inputs (bias, PReLU weights) are present.
 */
export interface KernelArgs<Input extends TensorInfo | undefined = TensorInfo> {
  /** The input tensors by name. */
  inputs: Record<string, Input>;
  /** The backend that runs the kernel. */
  backend: WasmBackend;
  /** The kernel's attributes. */
  attrs: Attrs;
}
