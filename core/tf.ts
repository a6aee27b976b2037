/**
 * The one TensorFlow.js import of convlens. Every module takes `tf` from here so
 * that a single copy of the engine (and its kernel registry) is shared.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgpu";

export { tf };

// tfjs takes Deno for Node and has the CPU backend advertise tfjs-node on first use,
// which cannot run here; mark that first use as done.
const cpu = tf.engine().findBackend("cpu") as unknown as { firstUse?: boolean } | null;
if (cpu) cpu.firstUse = false;
