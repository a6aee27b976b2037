import { tf } from "../core/tf.ts";
import { initBackend } from "../core/backend.ts";
import { nativeStatus } from "../core/native_kernels.ts";
await initBackend("wasm", { quiet: true });
const x = tf.randomNormal([3, 9, 11, 3]) as tf.Tensor4D;
const f = tf.randomNormal([3, 3, 3, 5]) as tf.Tensor4D;
tf.grad((w: tf.Tensor) => tf.conv2d(x, w as tf.Tensor4D, 1, "same").sum())(f);
tf.sum(tf.randomNormal([200, 8]), 0);
console.log(nativeStatus().calls, nativeStatus().refused);
