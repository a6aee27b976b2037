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
