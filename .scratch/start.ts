import { tf } from "../core/tf.ts";
import { initBackend } from "../core/backend.ts";
await initBackend("wasm", { quiet: true });
await initBackend("cpu", { quiet: true });
console.log(tf.getBackend());
