import { tf } from "../core/tf.ts";
import { initBackend } from "../core/backend.ts";
await initBackend("wasm", { quiet: true });
const [h, c, o, pad] = Deno.args.length ? [+Deno.args[0], +Deno.args[1], +Deno.args[2], Deno.args[3]] : [60, 8, 16, "same"];
for (let i = 0; i < 20; i++) {
  const x = tf.randomNormal([1, h, h, c]);
  const f = tf.randomNormal([1, 1, c, o]);
  const g = tf.grad((w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, pad as "same").sum())(f);
  const ref = tf.tidy(() => g.sum().dataSync()[0]);
  console.log(i, ref);
  tf.dispose([x, f, g]);
}
