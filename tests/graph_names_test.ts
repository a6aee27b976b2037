import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import { Net } from "../core/net.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { gradCam } from "../plugins/attribute/grad_cam.ts";
import { exportGraphModel } from "../scripts/graph_export.ts";
import { runPlugin } from "./_run.ts";
import { xceptionLike } from "./_zoo.ts";

await initBackend("cpu", { quiet: true });

const NODE = "StatefulPartitionedCall/model_1/block3_sepconv2_act/Relu";

Deno.test("a GraphModel's layers answer to their Keras names: taps, lookups and plugin parameters", async () => {
  const dir = await Deno.makeTempDir();
  const model = xceptionLike();
  try {
    await exportGraphModel(model, dir, { fuse: true, prefix: "StatefulPartitionedCall/model_1/" });
    const net = await loadNet(dir);
    const before = tf.memory().numTensors;
    try {
      assert.equal(net.canonicalLayer("block3_sepconv2_act"), NODE);
      assert.equal(net.layer("block3_sepconv2_act").name, NODE);
      // A layer's name names its output, the last of its nodes.
      assert.match(net.canonicalLayer("predictions"), /predictions\/Softmax$/);
      assert.throws(() => net.layer("block9_nope"), /block9_nope/);
      const x = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
      const byAlias = net.forward(x, { taps: ["block3_sepconv2_act"] });
      const byNode = net.forward(x, { taps: [NODE] });
      assert.deepEqual(Object.keys(byAlias.taps), ["block3_sepconv2_act"]);
      assert.deepEqual(
        Array.from(byAlias.taps.block3_sepconv2_act.dataSync()),
        Array.from(byNode.taps[NODE].dataSync()),
      );
      // The same activations as the LayersModel's own layer.
      const flat = Net.fromModel(model);
      const flatRun = flat.forward(x, { taps: ["block3_sepconv2_act"] });
      flatRun.output.dispose();
      const want = flatRun.taps.block3_sepconv2_act;
      const got = byAlias.taps.block3_sepconv2_act.dataSync();
      want.dataSync().forEach((v, i) => assert.ok(Math.abs(v - got[i]) < 1e-4 * (1 + Math.abs(v))));
      tf.dispose([byAlias.output, byNode.output, ...Object.values(byAlias.taps)]);
      tf.dispose([...Object.values(byNode.taps), want]);
      const images = imagesFromPixels(net, x);
      const a = await runPlugin(net, images, gradCam, { layer: "block3_sepconv2_act" });
      const b = await runPlugin(net, images, gradCam, { layer: NODE });
      assert.equal(a.figures.layer, NODE);
      assert.deepEqual(
        Array.from(a.tensors.map.dataSync()),
        Array.from(b.tensors.map.dataSync()),
      );
      a.dispose();
      b.dispose();
      tf.dispose([images.x, images.pixels]);
      assert.equal(tf.memory().numTensors, before);
      assert.equal(flat.aliases.size, 0, "a flat LayersModel needs no aliases");
    } finally {
      net.dispose();
    }
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
