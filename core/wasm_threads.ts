/**
 * Multi-threaded WASM (XNNPACK on a pthread pool) under Deno. Opt-in.
 *
 * tfjs-backend-wasm 4.22 takes Deno for Node.js and turns threads off. Forced
 * on, three things stop it, each worked around here for the duration of the
 * backend's start only:
 * - the pthread worker and the module script are made from `blob:` URLs, which
 *   Deno's `node:worker_threads` refuses: the Blobs' text is written to `.cjs`
 *   files in a temporary folder instead (minus an assignment to the worker's
 *   read-only `location`, plus the bundler's `require$$N` aliases the module
 *   text refers to);
 * - the module script reaches the workers as a Blob in a message: the Worker's
 *   `postMessage` swaps in the file path;
 * - the pool is capped at half of `os.cpus().length` when the module starts
 *   (1 on a 2-core machine): `os.cpus` reports twice the cores meanwhile.
 *
 * Measured on the 2-core machine of bench/RESULTS.md, a forward conv gave
 * identical outputs with 1 or 2 threads, but no speed-up while another process
 * kept one core busy; it is therefore not enabled by default.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { getThreadsCount, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import workerThreads from "node:worker_threads";
import os from "node:os";

const MODULE_PRELUDE = "var require$$0=require('fs'),require$$1=require('path')," +
  "require$$3=require('perf_hooks'),require$$4=require('os'),commonjsGlobal=globalThis;";

/**
 * Starts the WASM backend with a pool of `threads` XNNPACK threads. Must run
 * before the wasm backend is first set (before `initBackend("wasm")`); it
 * leaves wasm as the active backend.
 *
 * @param threads Threads for XNNPACK, default: all cores.
 * @returns The thread count the backend reports (1 when threads could not start).
 * @throws {Error} when the wasm backend is already running single-threaded.
 */
export async function enableWasmThreads(
  threads: number = os.cpus().length,
): Promise<number> {
  if (tf.findBackend("wasm") != null) {
    if (getThreadsCount() > 1) return getThreadsCount();
    throw new Error(
      "convlens: call enableWasmThreads() before the wasm backend is first used",
    );
  }
  const dir = Deno.makeTempDirSync({ prefix: "convlens-wasm-" });
  const texts = new WeakMap<Blob, string>();
  const files = new WeakMap<Blob, string>();
  let count = 0;
  const OriginalBlob = globalThis.Blob;
  const originalCreate = URL.createObjectURL;
  const originalCpus = os.cpus;
  // deno-lint-ignore no-explicit-any
  const wt = workerThreads as any;
  const OriginalWorker = wt.Worker;

  const toFile = (blob: Blob): string | undefined => {
    const known = files.get(blob);
    if (known) return known;
    const text = texts.get(blob);
    if (text === undefined) return undefined;
    const path = `${dir}/script${count++}.cjs`;
    const body = text.startsWith("var WasmBackendModuleThreadedSimd")
      ? MODULE_PRELUDE + text
      : text.replace("location:{href:__filename},", "");
    Deno.writeTextFileSync(path, body);
    files.set(blob, path);
    return path;
  };
  class RecordingBlob extends OriginalBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts?.every((p) => typeof p === "string")) texts.set(this, parts.join(""));
    }
  }
  globalThis.Blob = RecordingBlob as typeof Blob;
  URL.createObjectURL = (obj: Blob) =>
    (obj instanceof OriginalBlob ? toFile(obj) : undefined) ?? originalCreate(obj);
  os.cpus = () => [...originalCpus(), ...originalCpus()];
  wt.Worker = class extends OriginalWorker {
    // deno-lint-ignore no-explicit-any
    postMessage(message: any, transfer?: any) {
      if (message?.urlOrBlob instanceof OriginalBlob) {
        message = { ...message, urlOrBlob: toFile(message.urlOrBlob) };
      }
      return super.postMessage(message, transfer);
    }
  };
  try {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("the wasm backend did not start");
    await tf.ready();
  } finally {
    globalThis.Blob = OriginalBlob;
    URL.createObjectURL = originalCreate;
    os.cpus = originalCpus;
    // The module keeps the patched class it captured, for workers made later.
    wt.Worker = OriginalWorker;
  }
  return getThreadsCount();
}
