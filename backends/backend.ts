/**
 * Backend choice: `auto` takes WebGPU on a hardware adapter, else WASM (with the
 * gradient kernels `wasm_kernels.ts` adds to it), else the pure-JS CPU backend. The
 * `--backend` flag and the `CONVLENS_BACKEND` environment variable force one.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { registerBatchNormGradient } from "./batch_norm_grad.ts";
import { registerElementwiseGradients } from "./elementwise_grads.ts";
import { registerConstantWeightGradients } from "./constant_weight_grads.ts";
import { registerNativeKernels } from "./native_kernels.ts";
import { registerWasmKernels } from "./wasm_kernels.ts";
import { registerWebGpuGradients } from "./webgpu_grads.ts";
import { registerWarpKernels } from "./warp_kernels.ts";

/** A backend name as the user gives it. */
export type BackendName = "auto" | "webgpu" | "wasm" | "cpu";

/** The backends `--backend` accepts. */
export const BACKENDS: readonly BackendName[] = ["auto", "webgpu", "wasm", "cpu"];

/** Options of {@linkcode initBackend}. */
export interface BackendOptions {
  /** Print nothing (the choice is otherwise printed once, on stderr). @default false */
  quiet?: boolean;
}

let announced = false;

/** What is known of the WebGPU adapter: whether it is real hardware. */
export interface GpuAdapterFacts {
  /** Present at all (navigator.gpu gave an adapter). */
  present: boolean;
  /** A hardware adapter (not a software fallback such as llvmpipe). */
  hardware: boolean;
  /** The adapter's description, for the printed choice. */
  description: string;
}

/**
 * Gives the GPU drivers a runtime folder when the environment has none: Mesa's
 * Vulkan driver asks libwayland for a display while it starts, and libwayland
 * prints "error: XDG_RUNTIME_DIR is invalid or not set" on stderr (past any
 * `--quiet`) unless the variable names an absolute path. Nothing is written
 * there when no Wayland display runs. Without the permission to set it, the
 * environment is left alone.
 */
function quietGpuDrivers(): void {
  try {
    if (Deno.build.os !== "linux") return;
    const p = Deno.permissions.querySync({ name: "env", variable: "XDG_RUNTIME_DIR" });
    if (p.state !== "granted") return;
    if (Deno.env.get("XDG_RUNTIME_DIR")?.startsWith("/")) return;
    Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  } catch {
    // The variable only silences a message; running on without it is fine.
  }
}

/** Asks navigator.gpu for an adapter and says whether it is real hardware. */
export async function probeGpu(): Promise<GpuAdapterFacts> {
  // deno-lint-ignore no-explicit-any
  const gpu = (globalThis.navigator as any)?.gpu;
  if (!gpu) return { present: false, hardware: false, description: "" };
  quietGpuDrivers();
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { present: false, hardware: false, description: "" };
    const info = adapter.info ?? {};
    const description = String(info.description || info.vendor || "unknown");
    const software = adapter.isFallbackAdapter === true ||
      info.isFallbackAdapter === true ||
      /llvmpipe|swiftshader|lavapipe|software/i.test(description);
    return { present: true, hardware: !software, description };
  } catch {
    return { present: false, hardware: false, description: "" };
  }
}

/**
 * Resolves the name asked for (argument, else `CONVLENS_BACKEND`, else `auto`).
 * @throws {RangeError} on an unknown name.
 */
export function resolveBackendName(name?: string): BackendName {
  const asked = name ?? Deno.env.get("CONVLENS_BACKEND") ?? "auto";
  if (!(BACKENDS as readonly string[]).includes(asked)) {
    throw new RangeError(
      `Unknown backend "${asked}": use one of ${
        BACKENDS.join(", ")
      } (flag --backend or CONVLENS_BACKEND)`,
    );
  }
  return asked as BackendName;
}

/**
 * Sets the TensorFlow.js backend and returns the name in use.
 *
 * @param name `auto`, `webgpu`, `wasm` or `cpu`; default: `CONVLENS_BACKEND` or `auto`.
 * @param options Printing.
 * @returns The backend now in use.
 * @example Force the CPU backend
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const name = await initBackend("cpu", { quiet: true });
 * if (name !== "cpu") throw new Error(name);
 * ```
 */
export async function initBackend(
  name?: string,
  options: BackendOptions = {},
): Promise<string> {
  const asked = resolveBackendName(name);
  registerWasmKernels();
  registerNativeKernels();
  registerWebGpuGradients();
  registerBatchNormGradient();
  registerElementwiseGradients();
  registerConstantWeightGradients();
  registerWarpKernels();
  let order: string[];
  let why = "";
  if (asked === "auto") {
    const gpu = await probeGpu();
    order = gpu.hardware ? ["webgpu", "wasm", "cpu"] : ["wasm", "cpu"];
    why = gpu.hardware
      ? `hardware GPU: ${gpu.description}`
      : gpu.present
      ? `software GPU adapter only (${gpu.description})`
      : "no GPU adapter";
  } else {
    order = [asked];
  }
  for (const b of order) {
    if (tf.getBackend() === b) return announce(b, why, options);
    try {
      if (await tf.setBackend(b)) {
        await tf.ready();
        return announce(b, why, options);
      }
    } catch (err) {
      if (asked !== "auto") {
        throw new Error(
          `Backend "${b}" could not start (${
            (err as Error).message
          }); try --backend wasm or --backend cpu`,
        );
      }
    }
  }
  throw new Error(`No backend could start (tried ${order.join(", ")})`);
}

function announce(b: string, why: string, options: BackendOptions): string {
  if (!announced && !options.quiet) {
    announced = true;
    const native = registerNativeKernels();
    const extra = b === "wasm" && native.kernels.length
      ? ` + oneDNN (${native.threads} threads, ${native.openmp}) for convolutions and matrix products`
      : b === "wasm" && native.why
      ? ` without oneDNN (${withoutOneDnn(native.why)})`
      : "";
    console.error(`convlens: backend ${b}${extra}${why ? ` (${why})` : ""}`);
  }
  return b;
}

/**
 * What to do without oneDNN, and what it costs: measured here (2-core AMD
 * EPYC, `bench/real_size_side.ts` with `CONVLENS_NATIVE=0` and without), a
 * 224x224 ResNet-50 input gradient took 10x as long on WASM alone.
 */
function withoutOneDnn(why: string): string {
  const cost = "about 10x slower on convolutions at 224x224";
  if (/allow-ffi/.test(why)) return `${cost}: run with --allow-ffi to use it`;
  if (/not loaded/.test(why)) {
    return `${cost}: install oneDNN 2.x (Debian/Ubuntu: apt install libdnnl2) or set CONVLENS_ONEDNN`;
  }
  return why;
}
