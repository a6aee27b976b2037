import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Result } from "../core/result.ts";
import { initBackend } from "../backends/mod.ts";

await initBackend("cpu", { quiet: true });

Deno.test("Result.addImage() keeps tile captions as HTML in grid order and in the JSON", async () => {
  const r = new Result("saliency", "Saliency");
  const pixels = tf.zeros([10, 20, 3]) as tf.Tensor3D;
  await r.addImage("grid", pixels, "two tiles <per row>", {
    tiles: ["c3 img<0>", "map", "c7 img1", ""],
    cols: 2,
    colorbar: { colormap: "inferno", min: 0, max: 2, label: "|dS/dx|" },
  });
  pixels.dispose();
  const html = r.toHtml();
  assert.match(html, /<ol class="tiles" style="width:\d+px;grid-template-columns:repeat\(2,/);
  assert.match(html, /<li>c3 img&#60;0&#62;<\/li><li>map<\/li><li>c7 img1<\/li><li><\/li><\/ol>/);
  const json = r.toJSON().images[0];
  assert.deepEqual(json.tiles, ["c3 img<0>", "map", "c7 img1", ""]);
  assert.equal(json.cols, 2);
  assert.equal(json.colorbar?.max, 2);
});

Deno.test("Result.addImage() rejects tile captions without a column count", async () => {
  const r = new Result("x", "x");
  const pixels = tf.zeros([4, 4, 1]) as tf.Tensor3D;
  await assert.rejects(() => r.addImage("g", pixels, "", { tiles: ["a"] }), RangeError);
  pixels.dispose();
});
