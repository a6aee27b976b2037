/**
 * Batch sizes from a memory budget, and out-of-memory errors that say what to
 * lower. A batched technique (SmoothGrad's noisy samples, Integrated Gradients'
 * path points, occlusion's patches) holds every layer's activation of every
 * image of a batch at once, and a gradient pass keeps them for the backward
 * pass too; a fixed default batch that suits MNIST exhausts the WASM heap
 * (4 GB at most) on a 224x224 ResNet-50. So a plugin's default batch is what
 * fits in the budget: bytes per image are the model's layer output elements x
 * 4 bytes x a factor for the pass, and the batch is the budget over that, at
 * least 1 and at most the plugin's own cap.
 *
 * The budget is {@linkcode DEFAULT_MEMORY_MB} megabytes, or the environment
 * variable `CONVLENS_MEMORY_MB`, or `Lens.open({ memoryMB })`.
 *
 * @example Batch of a gradient pass under a 1 MB budget
 * ```ts
 * import { batchSizeForLayers } from "./memory_budget.ts";
 * // 1000 + 24 elements x 4 bytes x 3 (gradient pass) = 12288 bytes per image
 * const shapes = [[10, 10, 10], [24]];
 * if (batchSizeForLayers(shapes, 64, { memoryMB: 1 }) !== 64) throw new Error("cap");
 * if (batchSizeForLayers(shapes, 1000, { memoryMB: 1 }) !== 85) throw new Error("budget");
 * ```
 *
 * @module
 */
import type { Net } from "./net.ts";

/** Megabytes of activations a batch may take when nothing else is said. */
export const DEFAULT_MEMORY_MB = 512;

/**
 * How much a pass holds per activation element: a forward pass frees most
 * layers' outputs as it goes, a gradient pass keeps them and adds their
 * gradients (and the tape's intermediate tensors).
 */
export const PASS_FACTOR: Readonly<Record<"forward" | "gradient", number>> = {
  forward: 1.5,
  gradient: 3,
};

/** Options of {@linkcode batchSizeFor}. */
export interface MemoryBudgetOptions {
  /** Megabytes of activations per batch. @default CONVLENS_MEMORY_MB or 512 */
  memoryMB?: number;
  /** The kind of pass each batch runs. @default "gradient" */
  pass?: "forward" | "gradient";
  /** Copies of the input each image of the batch also holds (masks, noise). @default 0 */
  extraInputs?: number;
}

/**
 * The budget in megabytes: `memoryMB` when given, else `CONVLENS_MEMORY_MB`,
 * else {@linkcode DEFAULT_MEMORY_MB}.
 *
 * @param memoryMB A budget given in code.
 * @returns The budget in megabytes.
 * @throws {RangeError} for a budget that is not a positive number.
 * @example The default budget
 * ```ts
 * import { memoryBudgetMB } from "./memory_budget.ts";
 * if (memoryBudgetMB(100) !== 100) throw new Error("given");
 * ```
 */
export function memoryBudgetMB(memoryMB?: number): number {
  let mb = memoryMB;
  let from = "memoryMB";
  if (mb === undefined) {
    let env: string | undefined;
    try {
      env = Deno.env.get("CONVLENS_MEMORY_MB");
    } catch {
      env = undefined; // no --allow-env: the default
    }
    if (env !== undefined && env.trim() !== "") {
      mb = Number(env);
      from = "CONVLENS_MEMORY_MB";
    }
  }
  if (mb === undefined) return DEFAULT_MEMORY_MB;
  if (!Number.isFinite(mb) || mb <= 0) {
    throw new RangeError(`${from} must be a positive number of megabytes, got ${mb}`);
  }
  return mb;
}

/**
 * Images per batch for layers of these output shapes (without the batch axis).
 *
 * @param shapes Output shape of each layer.
 * @param cap The most images a batch takes (the plugin's own limit).
 * @param options Budget, pass, extra input copies.
 * @returns floor(budget / bytes per image), at least 1, at most `cap`.
 * @example A cap wins over a large budget
 * ```ts
 * import { batchSizeForLayers } from "./memory_budget.ts";
 * if (batchSizeForLayers([[4]], 16, { memoryMB: 512 }) !== 16) throw new Error("cap");
 * ```
 */
export function batchSizeForLayers(
  shapes: readonly (readonly number[])[],
  cap: number,
  options: MemoryBudgetOptions = {},
): number {
  const elements = shapes.reduce(
    (sum, s) => sum + s.reduce((p, d) => p * (d > 0 ? d : 1), 1),
    0,
  );
  const input = shapes[0] ?? [];
  const inputElements = input.reduce((p, d) => p * (d > 0 ? d : 1), 1);
  const perImage = (elements * PASS_FACTOR[options.pass ?? "gradient"] +
    inputElements * (options.extraInputs ?? 0)) * 4;
  const budget = memoryBudgetMB(options.memoryMB) * 1024 * 1024;
  const fit = perImage > 0 ? Math.floor(budget / perImage) : cap;
  return Math.max(1, Math.min(Math.floor(cap), fit));
}

/**
 * Images per batch on `net` within the memory budget.
 *
 * @param net The model (its layers' output shapes set the bytes per image).
 * @param cap The most images a batch takes.
 * @param options Budget, pass, extra input copies.
 * @returns The batch size, from 1 to `cap`.
 */
export function batchSizeFor(net: Net, cap: number, options: MemoryBudgetOptions = {}): number {
  return batchSizeForLayers(net.layers.map((l) => l.outputShape), cap, options);
}

const OUT_OF_MEMORY = [
  /\bAborted\(/,
  /memory access out of bounds/i,
  /out of memory/i,
  /WebAssembly\.Memory/,
  /Cannot enlarge memory/i,
  /Array buffer allocation failed/i,
  /Invalid typed array length/i,
];

/**
 * Whether `err` is the engine running out of memory (emscripten's `Aborted()`,
 * `memory access out of bounds`, `Out of memory`, a failed
 * `WebAssembly.Memory` growth, a typed array too large to allocate).
 *
 * @param err What was thrown.
 * @returns True for an out-of-memory error.
 * @example
 * ```ts
 * import { isOutOfMemory } from "./memory_budget.ts";
 * if (!isOutOfMemory(new Error("Aborted(). Build with -sASSERTIONS"))) throw new Error("oom");
 * ```
 */
export function isOutOfMemory(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return OUT_OF_MEMORY.some((re) => re.test(text));
}

/** The error of a plugin that ran out of memory; the CLI prints its message. */
export class OutOfMemoryError extends RangeError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OutOfMemoryError";
  }
}

/**
 * A clear error for a plugin that ran out of memory, naming what to lower.
 *
 * @param plugin The plugin's name.
 * @param params The names of its batch parameters (`batchSize` and such).
 * @param cause The engine's error.
 * @param memoryMB The budget the run had, when given in code.
 * @returns An {@linkcode OutOfMemoryError}.
 * @example
 * ```ts
 * import { outOfMemoryError } from "./memory_budget.ts";
 * const e = outOfMemoryError("smoothgrad", ["batchSize"], new Error("Aborted()"));
 * if (!e.message.includes("--batchSize")) throw new Error("names the parameter");
 * ```
 */
export function outOfMemoryError(
  plugin: string,
  params: readonly string[],
  cause: unknown,
  memoryMB?: number,
): OutOfMemoryError {
  const lower = params.length
    ? `lower ${params.map((p) => `--${p}`).join(" or ")} (e.g. --${params[0]} 1), or `
    : "";
  const detail = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
  let budget: number | string;
  try {
    budget = memoryBudgetMB(memoryMB);
  } catch {
    budget = "?";
  }
  return new OutOfMemoryError(
    `${plugin} ran out of memory (${detail}): ${lower}lower the memory budget ` +
      `(CONVLENS_MEMORY_MB, now ${budget} MB, or Lens.open({ memoryMB })) ` +
      `or use smaller input images`,
    { cause },
  );
}
