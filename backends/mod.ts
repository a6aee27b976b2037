/**
 * Backend choice and what each backend lacks, behind one entry point: the rest
 * of convlens calls {@linkcode initBackend} and reads {@linkcode nativeStatus};
 * the kernels themselves (oneDNN bindings and native kernels, WASM kernels,
 * WebGPU gradient fixes) stay internal to this folder.
 *
 * @example Start the pure-JS CPU backend
 * ```ts
 * import { initBackend } from "./mod.ts";
 * const name = await initBackend("cpu", { quiet: true });
 * if (name !== "cpu") throw new Error(name);
 * ```
 *
 * @module
 */
export * from "./backend.ts";
export { type NativeStatus, nativeStatus, useNativeKernels } from "./native_kernels.ts";
