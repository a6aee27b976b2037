/**
 * Gradient kernels the WASM backend lacks, built from kernels it has.
 * (Filled in by the "Fast CPU gradients" work.)
 *
 * @module
 */

/** Registers the missing WASM gradient kernels; safe to call more than once. */
export function registerWasmKernels(): void {}
