import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { functionalNet, noLeak, sequentialNet } from "./_nets.ts";

await tf.setBackend("cpu");

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => a.sub(b).abs().max());
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

Deno.test("Net lists layers with kernel, stride, padding, shape and parameters", () => {
  const net = Net.fromModel(sequentialNet());
  const conv1 = net.layer("conv1");
  assert.deepEqual(conv1.kernel, [3, 3]);
  assert.deepEqual(conv1.stride, [1, 1]);
  assert.equal(conv1.padding, "same");
  assert.deepEqual(conv1.dilation, [1, 1]);
  assert.deepEqual(conv1.outputShape, [12, 12, 4]);
  assert.equal(conv1.params, 3 * 3 * 1 * 4 + 4);
  assert.equal(conv1.activation, "relu");
  assert.deepEqual(net.layer("pool1").stride, [2, 2]);
  assert.deepEqual(net.layer("conv2").outputShape, [4, 4, 6]);
  assert.deepEqual(net.layers.map((l) => l.name), [
    "input",
    "conv1",
    "pool1",
    "conv2",
    "flatten",
    "logits",
    "probs",
  ]);
  assert.throws(() => net.layer("conv9"), /Unknown layer "conv9".*conv1/);
  net.dispose();
});

Deno.test("Net.forward() matches model.predict and taps layers of a functional model", async () => {
  const model = functionalNet();
  const net = Net.fromModel(model);
  const x = tf.randomUniform([3, 10, 10, 3], 0, 1, "float32", 3);
  await noLeak(async () => {
    const ref = model.predict(x) as tf.Tensor;
    const r = net.forward(x, { taps: ["add", "cat", "b"], logits: true });
    assert.ok(await maxDiff(ref, r.output) < 1e-6);
    assert.deepEqual(r.taps.cat.shape, [3, 10, 10, 6]);
    // The residual add is the sum of its branches.
    const parts = net.forward(x, { taps: ["b", "skip"] });
    const sum = parts.taps.b.add(parts.taps.skip);
    assert.ok(await maxDiff(sum, r.taps.add) < 1e-6);
    // Logits of a fused softmax: their softmax is the output.
    const sm = tf.softmax(r.logits!);
    assert.ok(await maxDiff(sm, r.output) < 1e-6);
    tf.dispose([ref, r.output, r.logits!, ...Object.values(r.taps), sm, sum, parts.output]);
    tf.dispose(Object.values(parts.taps));
  });
  x.dispose();
  net.dispose();
});

Deno.test("Net.forward() feeds: a fed layer and what only it needs do not run; what follows reads the feed", async () => {
  const net = Net.fromModel(functionalNet());
  const x = tf.randomUniform([2, 10, 10, 3], 0, 1, "float32", 5);
  const convs = async (f: () => tf.Tensor) => {
    const prof = await tf.profile(() => f());
    (prof.result as tf.Tensor).dispose();
    return prof.kernels.filter((k) => /Conv2D/.test(k.name)).length;
  };
  await noLeak(async () => {
    const b = net.forward(x, { taps: ["b"], stopAtTaps: true }).taps.b;
    const plain = net.forward(x).output;
    const fed = net.forward(x, { feed: { b } }).output;
    assert.ok(await maxDiff(plain, fed) < 1e-6);
    // a and b are skipped; skip (the other branch into the add) still runs.
    assert.equal(
      await convs(() => net.forward(x).output) -
        await convs(() => net.forward(x, { feed: { b } }).output),
      2,
    );
    // Another value fed gives what the same edit gives.
    const zeros = tf.zerosLike(b);
    const viaFeed = net.forward(x, { feed: { b: zeros } }).output;
    const viaEdit = net.forward(x, { edits: { b: () => zeros } }).output;
    assert.ok(await maxDiff(viaFeed, viaEdit) < 1e-6);
    assert.ok(await maxDiff(viaFeed, plain) > 1e-4);
    tf.dispose([b, plain, fed, zeros, viaFeed, viaEdit]);
  });
  x.dispose();
  net.dispose();
});

Deno.test("Net.forward() edits: keeping one channel changes what comes after", async () => {
  const net = Net.fromModel(sequentialNet());
  const x = tf.randomUniform([2, 12, 12, 1], 0, 1, "float32", 4);
  const keep = (c: number) => (a: tf.Tensor) =>
    a.mul(tf.oneHot(c, a.shape[3]!).reshape([1, 1, 1, -1]));
  await noLeak(async () => {
    const r = net.forward(x, { taps: ["conv1", "conv2"], edits: { conv1: keep(2) } });
    const sumT = r.taps.conv1.sum([0, 1, 2]);
    const sums = await sumT.data();
    sumT.dispose();
    assert.equal(sums[0], 0);
    assert.ok(sums[2] > 0);
    const plain = net.forward(x, { taps: ["conv2"] });
    assert.ok(await maxDiff(plain.taps.conv2, r.taps.conv2) > 1e-4);
    tf.dispose([r.output, plain.output, ...Object.values(r.taps), ...Object.values(plain.taps)]);
  });
  x.dispose();
  net.dispose();
});

Deno.test("Net refuses an input of the wrong shape or channel count and a bad class index", () => {
  const net = Net.fromModel(sequentialNet());
  const x = tf.zeros([1, 12, 12, 3]);
  assert.throws(() => net.forward(x), /has 3 channels, the model takes 1/);
  const y = tf.zeros([1, 20, 20, 1]);
  assert.throws(() => net.forward(y), /expected \[batch, 12, 12, 1\].*resize/);
  assert.throws(
    () => net.checkClass(5),
    /Class index 5 is out of range: this model has 5 classes \(0 to 4\)/,
  );
  assert.throws(
    () => net.forward(tf.zeros([1, 12, 12, 1]), { taps: ["nope"] }),
    /Unknown layer "nope"/,
  );
  tf.dispose([x, y]);
  net.dispose();
});

Deno.test("Net maps pixels to model input space and back with the input contract", async () => {
  const net = Net.fromModel(sequentialNet(1, 1), {
    input: { range: [0, 255], mean: [127.5], std: [127.5] },
  });
  const p = tf.tensor4d([0, 0.5, 1, 0.25], [1, 2, 2, 1]);
  const x = net.fromPixels(p);
  assert.deepEqual(Array.from(await x.data()), [-1, 0, 1, -0.5]);
  const back = net.toPixels(x);
  assert.ok(await maxDiff(back, p) < 1e-6);
  assert.deepEqual(net.inputBounds(), { lo: [-1], hi: [1] });
  tf.dispose([p, x, back]);
  net.dispose();
});

/** The kernels one call runs, by name (from tf.profile). */
async function kernelsRun(fn: () => tf.TensorContainer): Promise<string[]> {
  const info = await tf.profile(() => {
    const r = fn();
    tf.dispose(r);
  });
  return info.kernelNames;
}

Deno.test("forward with stopAtTaps runs only what the taps need, same taps, nothing left over", async () => {
  const cases: [tf.LayersModel, string[], Record<string, string>][] = [
    [sequentialNet(), ["conv1"], { logits: "logits", probs: "probs" }],
    [sequentialNet(), ["pool1", "input"], { logits: "logits", probs: "probs" }],
    [functionalNet(), ["add"], {}],
    [functionalNet(), ["skip", "a"], {}],
  ];
  for (const [model, taps, sidecar] of cases) {
    const net = Net.fromModel(model, sidecar);
    const [h, w, c] = [net.input.height, net.input.width, net.input.channels];
    const x = tf.randomUniform([2, h, w, c], 0, 1, "float32", 3);
    await noLeak(async () => {
      const full = net.forward(x, { taps });
      const short = net.forward(x, { taps, stopAtTaps: true });
      for (const t of taps) {
        assert.deepEqual(short.taps[t].arraySync(), full.taps[t].arraySync(), `${t}`);
      }
      assert.throws(() => short.output, /stopAtTaps.*not computed/);
      tf.dispose([full.output, ...Object.values(full.taps), ...Object.values(short.taps)]);
      // Fewer kernels: nothing after the taps runs (no dense layer, no softmax).
      const fullKernels = await kernelsRun(() => net.forward(x, { taps }) as never);
      const shortKernels = await kernelsRun(() =>
        Object.values(net.forward(x, { taps, stopAtTaps: true }).taps)
      );
      assert.ok(shortKernels.length < fullKernels.length, `${shortKernels} vs ${fullKernels}`);
      assert.ok(!shortKernels.some((k) => /MatMul|Softmax/.test(k)), `${shortKernels}`);
    });
    // With logits asked, the pass still reaches the logits layer.
    await noLeak(() => {
      const r = net.forward(x, { taps: taps.slice(0, 1), logits: true, stopAtTaps: true });
      const want = net.logits(x);
      assert.deepEqual(r.logits!.arraySync(), want.arraySync());
      tf.dispose([r.logits!, want, ...Object.values(r.taps)]);
    });
    x.dispose();
    model.dispose();
  }
});
