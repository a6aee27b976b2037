import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { assertClose } from "./_close.ts";
import { initBackend } from "../backends/mod.ts";
import { registerWasmKernels, WASM_KERNEL_NAMES } from "../backends/wasm_kernels.ts";
import { useNativeKernels } from "../backends/native_kernels.ts";
import { CLIP_GRAD_KERNEL } from "../backends/elementwise_grads.ts";

// These tests are about the WASM kernels themselves, which the oneDNN kernels
// (tests/native_kernels_test.ts) would otherwise answer for.
useNativeKernels(false);

type Backend = "wasm" | "cpu";
type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];

/** A small seeded generator, so failures reproduce. */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function values(n: number, seed: number): Float32Array {
  const r = rand(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r();
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

async function use(name: Backend): Promise<void> {
  await initBackend(name, { quiet: true });
  assert.equal(tf.getBackend(), name);
}

/** Runs `fn` on each backend and returns its arrays; checks nothing leaks. */
async function onBoth(
  fn: () => tf.Tensor[],
): Promise<Record<Backend, Float32Array[]>> {
  const out = {} as Record<Backend, Float32Array[]>;
  for (const b of ["cpu", "wasm"] as Backend[]) {
    await use(b);
    const before = tf.memory().numTensors;
    const ts = tf.tidy(fn);
    out[b] = ts.map((t) => t.dataSync() as Float32Array);
    tf.dispose(ts);
    assert.equal(tf.memory().numTensors, before, `tensors leaked on ${b}`);
  }
  return out;
}

function assertAllClose(r: Record<Backend, Float32Array[]>, what: string, tol?: number): void {
  r.cpu.forEach((want, i) => assertClose(r.wasm[i], want, `${what} [${i}]`, tol));
}

/** The filter with (d - 1) zeros between taps: a dilated conv as a plain one. */
function dilateFilter(f: tf.Tensor4D, d: number): tf.Tensor4D {
  const [kh, kw, c, m] = f.shape;
  const z = tf.zeros([kh, d - 1, kw, d - 1, c, m]);
  const spread = tf.concat([
    f.reshape([kh, 1, kw, 1, c, m]),
    z.slice(
      [0, 0, 0, 0, 0, 0],
      [kh, d - 1, kw, 1, c, m],
    ),
  ], 1);
  const full = tf.concat([spread, tf.zeros([kh, d, kw, d - 1, c, m])], 3);
  return full.reshape([kh * d, kw * d, c, m]).slice([0, 0, 0, 0], [
    (kh - 1) * d + 1,
    (kw - 1) * d + 1,
    c,
    m,
  ]) as tf.Tensor4D;
}

interface Case {
  batch: number;
  h: number;
  w: number;
  k: number;
  stride: number;
  pad: Pad;
}

function grid(): Case[] {
  const cases: Case[] = [];
  for (const stride of [1, 2]) {
    for (const pad of ["same", "valid"] as Pad[]) {
      for (const k of [1, 3, 5]) {
        for (const batch of [1, 3]) cases.push({ batch, h: 7, w: 9, k, stride, pad });
      }
    }
  }
  cases.push({ batch: 2, h: 8, w: 5, k: 3, stride: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] });
  cases.push({ batch: 1, h: 6, w: 7, k: 2, stride: 1, pad: [[0, 0], [3, 0], [0, 4], [0, 0]] });
  return cases;
}

function label(c: Case): string {
  return `batch ${c.batch}, ${c.h}x${c.w}, kernel ${c.k}, stride ${c.stride}, pad ${
    JSON.stringify(c.pad)
  }`;
}

Deno.test("conv2d input and filter gradients on wasm match the cpu backend", async () => {
  const [ci, co] = [3, 4];
  for (const c of grid()) {
    const xs = [c.batch, c.h, c.w, ci], fs = [c.k, c.k, ci, co];
    const r = await onBoth(() => {
      const x = tf.tensor4d(values(size(xs), 1), xs as [number, number, number, number]);
      const f = tf.tensor4d(values(size(fs), 2), fs as [number, number, number, number]);
      const loss = (a: tf.Tensor4D, b: tf.Tensor4D) =>
        tf.conv2d(a, b, c.stride, c.pad).mul(tf.sin(tf.range(0, co).add(1))).sum();
      const [dx, df] = tf.grads(loss as (...a: tf.Tensor[]) => tf.Scalar)([x, f]);
      return [dx, df];
    });
    assertAllClose(r, `conv2d ${label(c)}`);
  }
});

Deno.test("the conv kernels handle dilation 2 like a plain conv with a zero-spread filter", async () => {
  const [ci, co, d] = [3, 2, 2];
  for (const k of [3, 5]) {
    for (const pad of ["same", "valid"] as Pad[]) {
      for (const batch of [1, 3]) {
        const xs: [number, number, number, number] = [batch, 11, 13, ci];
        const fs: [number, number, number, number] = [k, k, ci, co];
        const want: Float32Array[] = [];
        const got: Float32Array[] = [];
        for (const b of ["cpu", "wasm"] as Backend[]) {
          await use(b);
          const before = tf.memory().numTensors;
          const out = tf.tidy(() => {
            const x = tf.tensor4d(values(size(xs), 3), xs);
            const f = tf.tensor4d(values(size(fs), 4), fs);
            const y = tf.conv2d(x, f, 1, pad, "NHWC", d);
            const dy = tf.tensor4d(values(y.size, 5), y.shape as [number, number, number, number]);
            if (b === "cpu") {
              // The reference: the same conv with an undilated, zero-spread filter.
              const fd = dilateFilter(f, d);
              const [dx, dfd] = tf.grads((a: tf.Tensor, w: tf.Tensor) =>
                tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, 1, pad).mul(dy).sum()
              )([x, fd]);
              const df = tf.stridedSlice(dfd, [0, 0, 0, 0], dfd.shape, [d, d, 1, 1]);
              return [dx, df];
            }
            const attrs = { strides: [1, 1], pad, dataFormat: "NHWC", dilations: [d, d] };
            const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
              ...attrs,
              inputShape: xs,
            }) as tf.Tensor;
            const df = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
              ...attrs,
              filterShape: fs,
            }) as tf.Tensor;
            return [dx, df];
          });
          (b === "cpu" ? want : got).push(...out.map((t) => t.dataSync() as Float32Array));
          tf.dispose(out);
          assert.equal(tf.memory().numTensors, before);
        }
        assertClose(got[0], want[0], `dilated conv dx k${k} ${pad} b${batch}`);
        assertClose(got[1], want[1], `dilated conv dw k${k} ${pad} b${batch}`);
      }
    }
  }
});

Deno.test("depthwise conv gradients on wasm match the cpu backend", async () => {
  const ci = 3;
  for (const c of grid()) {
    for (const m of [1, 2]) {
      const xs = [c.batch, c.h, c.w, ci], fs = [c.k, c.k, ci, m];
      const r = await onBoth(() => {
        const x = tf.tensor4d(values(size(xs), 6), xs as [number, number, number, number]);
        const f = tf.tensor4d(values(size(fs), 7), fs as [number, number, number, number]);
        const loss = (a: tf.Tensor4D, b: tf.Tensor4D) =>
          tf.depthwiseConv2d(a, b, c.stride, c.pad).mul(tf.cos(tf.range(0, ci * m))).sum();
        return tf.grads(loss as (...a: tf.Tensor[]) => tf.Scalar)([x, f]);
      });
      assertAllClose(r, `depthwise m${m} ${label(c)}`);
    }
  }
});

Deno.test("the depthwise kernels handle dilation 2 like a zero-spread filter", async () => {
  const [ci, d] = [2, 2];
  for (const k of [3, 5]) {
    for (const pad of ["same", "valid"] as Pad[]) {
      for (const m of [1, 2]) {
        const xs: [number, number, number, number] = [3, 11, 12, ci];
        const fs: [number, number, number, number] = [k, k, ci, m];
        const res: Record<string, Float32Array[]> = {};
        for (const b of ["cpu", "wasm"] as Backend[]) {
          await use(b);
          const before = tf.memory().numTensors;
          const out = tf.tidy(() => {
            const x = tf.tensor4d(values(size(xs), 8), xs);
            const f = tf.tensor4d(values(size(fs), 9), fs);
            const y = tf.depthwiseConv2d(x, f, 1, pad, "NHWC", d);
            const dy = tf.tensor4d(values(y.size, 10), y.shape as [number, number, number, number]);
            if (b === "cpu") {
              const fd = dilateFilter(f, d);
              const [dx, dfd] = tf.grads((a: tf.Tensor, w: tf.Tensor) =>
                tf.depthwiseConv2d(a as tf.Tensor4D, w as tf.Tensor4D, 1, pad).mul(dy).sum()
              )([x, fd]);
              return [dx, tf.stridedSlice(dfd, [0, 0, 0, 0], dfd.shape, [d, d, 1, 1])];
            }
            const attrs = { strides: [1, 1], pad, dilations: [d, d] };
            return [
              tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter: f }, {
                ...attrs,
                inputShape: xs,
              }) as tf.Tensor,
              tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
                ...attrs,
                filterShape: fs,
              }) as tf.Tensor,
            ];
          });
          res[b] = out.map((t) => t.dataSync() as Float32Array);
          tf.dispose(out);
          assert.equal(tf.memory().numTensors, before);
        }
        assertClose(res.wasm[0], res.cpu[0], `dilated depthwise dx k${k} ${pad} m${m}`);
        assertClose(res.wasm[1], res.cpu[1], `dilated depthwise dw k${k} ${pad} m${m}`);
      }
    }
  }
});

Deno.test("gather gradients on wasm match the cpu backend, duplicates summed", async () => {
  for (const axis of [0, 1, 2]) {
    const r = await onBoth(() => {
      const x = tf.tensor3d(values(7 * 6 * 5, 11), [7, 6, 5]);
      const idx = tf.tensor1d([3, 1, 3, 0, 4, 4, 4], "int32");
      const w = tf.tensor(values(7 * 30, 12));
      const [dx] = tf.grads((a: tf.Tensor) =>
        tf.gather(a, idx, axis).reshape([-1]).slice(0, 7 * 30 / 7 * 5).mul(
          w.slice(0, 7 * 30 / 7 * 5),
        ).sum()
      )([x]);
      return [dx];
    });
    assertAllClose(r, `gather axis ${axis}`);
  }
});

Deno.test("unsortedSegmentSum on wasm drops out-of-range ids like the cpu backend", async () => {
  const r = await onBoth(() => {
    const x = tf.tensor2d(values(8 * 3, 13), [8, 3]);
    const ids = tf.tensor1d([0, 2, -1, 2, 5, 1, 0, 9], "int32");
    const inRange = tf.tensor1d([0, 2, 0, 2, 3, 1, 0, 3], "int32");
    return [tf.unsortedSegmentSum(x, ids, 4), tf.unsortedSegmentSum(x, inRange, 4)];
  });
  assertAllClose(r, "unsortedSegmentSum");
});

Deno.test("max-pool gradients on wasm match the cpu backend, negative windows included", async () => {
  for (const [size, stride] of [[2, 2], [3, 1], [3, 2]]) {
    for (const pad of ["same", "valid"] as const) {
      const r = await onBoth(() => {
        const x = tf.tensor4d(values(2 * 7 * 9 * 3, 50), [2, 7, 9, 3]).sub(0.3);
        const w = tf.tensor(values(2 * 7 * 9 * 3, 51));
        return [
          tf.grad((v: tf.Tensor) =>
            tf.maxPool(v as tf.Tensor4D, size, stride, pad).reshape([-1]).mul(
              w.slice(0, tf.maxPool(v as tf.Tensor4D, size, stride, pad).size),
            ).sum()
          )(x),
        ];
      });
      assertAllClose(r, `maxPool ${size}/${stride} ${pad}`);
    }
  }
});

function smallNet(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 2],
        filters: 4,
        kernelSize: 3,
        padding: "same",
        activation: "relu",
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: "relu" }),
      tf.layers.depthwiseConv2d({ kernelSize: 2, padding: "same" }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5, activation: "softmax" }),
    ],
  });
}

Deno.test("a training step of a small conv net on wasm equals the cpu backend's", async () => {
  const init = (() => {
    const m = smallNet();
    const ws = m.getWeights().map((w, i) => ({ shape: w.shape, data: values(w.size, 20 + i) }));
    m.dispose();
    return ws;
  })();
  const xData = values(4 * 12 * 12 * 2, 30);
  const labels = [0, 3, 1, 4];
  const after: Record<string, Float32Array[]> = {};
  const losses: Record<string, number> = {};
  for (const b of ["cpu", "wasm"] as Backend[]) {
    await use(b);
    const before = tf.memory().numTensors;
    const model = smallNet();
    const initial = init.map((w) => tf.tensor(w.data, w.shape));
    model.setWeights(initial);
    tf.dispose(initial);
    model.compile({ optimizer: tf.train.sgd(0.5), loss: "categoricalCrossentropy" });
    const x = tf.tensor4d(xData, [4, 12, 12, 2]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 5));
    losses[b] = (await model.trainOnBatch(x, y)) as number;
    after[b] = model.getWeights().map((w) => w.dataSync() as Float32Array);
    tf.dispose([x, y]);
    model.optimizer.dispose();
    model.dispose();
    assert.equal(tf.memory().numTensors, before, `tensors leaked on ${b}`);
  }
  assert.ok(Math.abs(losses.wasm - losses.cpu) <= 1e-4 * Math.abs(losses.cpu));
  after.cpu.forEach((want, i) => assertClose(after.wasm[i], want, `weight ${i} after one step`));
});

Deno.test("sign on wasm matches the cpu backend for tiny, zero, large and NaN values", async () => {
  const xs = [
    1e-9,
    -1e-9,
    4e-9,
    -4e-9,
    1e-30,
    -1e-30,
    1e-45,
    -1e-45,
    0,
    -0,
    0.5,
    -2,
    3e38,
    -3e38,
    Infinity,
    -Infinity,
  ];
  const r = await onBoth(() => [
    tf.sign(tf.tensor1d(xs)),
    tf.sign(tf.tensor1d([7, -3, 0, 2147483647, -2147483648], "int32")).toFloat(),
  ]);
  assert.deepEqual(Array.from(r.wasm[0]), Array.from(r.cpu[0]));
  assert.deepEqual(Array.from(r.cpu[0]), [1, -1, 1, -1, 1, -1, 1, -1, 0, 0, 1, -1, 1, -1, 1, -1]);
  assert.ok(!Object.is(r.wasm[0][9], -0), "sign(-0) is 0 as on cpu");
  assert.deepEqual(Array.from(r.wasm[1]), Array.from(r.cpu[1]));
  // NaN stays NaN on wasm (the cpu backend gives 0 there; TensorFlow and NumPy give NaN).
  await use("wasm");
  const before = tf.memory().numTensors;
  const nan = tf.tidy(() => tf.sign(tf.tensor1d([NaN, -1e-20, NaN])));
  assert.deepEqual(Array.from(await nan.data()), [NaN, -1, NaN]);
  nan.dispose();
  assert.equal(tf.memory().numTensors, before);
  registerWasmKernels();
  const again = tf.tidy(() => tf.sign(tf.scalar(1e-12)));
  assert.equal((await again.data())[0], 1, "still registered after a second call");
  again.dispose();
});

Deno.test("every kernel that common gradients use is registered for wasm", async () => {
  registerWasmKernels();
  for (const name of WASM_KERNEL_NAMES) assert.ok(tf.getKernel(name, "wasm"), name);
  await use("cpu");
  const x4 = () => tf.tensor4d(values(2 * 8 * 8 * 3, 40), [2, 8, 8, 3]);
  const objectives: Record<string, (x: tf.Tensor) => tf.Scalar> = {
    conv2d: (x) => tf.conv2d(x as tf.Tensor4D, tf.ones([3, 3, 3, 4]), 2, "same").sum(),
    depthwiseConv2d: (x) =>
      tf.depthwiseConv2d(x as tf.Tensor4D, tf.ones([3, 3, 3, 2]), 1, "valid").sum(),
    gather: (x) => tf.gather(x, tf.tensor1d([1, 0, 1], "int32"), 2).sum(),
    maxPool: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, "same").square().sum(),
    avgPool: (x) => tf.avgPool(x as tf.Tensor4D, 3, 2, "valid").square().sum(),
    relu: (x) => tf.relu(x).sum(),
    batchNorm: (x) =>
      tf.batchNorm(
        x as tf.Tensor4D,
        tf.moments(x, [0, 1, 2]).mean,
        tf.moments(x, [0, 1, 2]).variance,
        tf.ones([3]),
        tf.ones([3]).mul(2),
        1e-3,
      ).square().sum(),
    matMul: (x) => tf.matMul(x.reshape([16, 24]), tf.ones([24, 5])).square().sum(),
    softmax: (x) => tf.softmax(x.reshape([16, 24])).mul(tf.range(0, 24)).sum(),
  };
  const missing: string[] = [];
  for (const [what, f] of Object.entries(objectives)) {
    const before = tf.memory().numTensors;
    const info = await tf.profile(() => tf.tidy(() => tf.grad(f)(x4())));
    tf.dispose(info.result as tf.Tensor);
    for (const k of info.kernelNames) {
      if (!tf.getKernel(k, "wasm")) missing.push(`${what}: ${k}`);
    }
    assert.equal(tf.memory().numTensors, before);
  }
  assert.deepEqual(missing, []);
  // And they do run on wasm, to the cpu backend's answer.
  for (const [what, f] of Object.entries(objectives)) {
    assertAllClose(await onBoth(() => [tf.grad(f)(x4())]), what);
  }
});

Deno.test("fused matMul with a bias on wasm matches cpu for batches and transposes", async () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    for (const batch of [1, 3]) {
      const [m, k, n] = [7, 13, 5];
      const r = await onBoth(() => {
        const as = ta ? [batch, k, m] : [batch, m, k], bs = tb ? [batch, n, k] : [batch, k, n];
        const a = tf.tensor3d(values(size(as), 8), as as [number, number, number]);
        const b = tf.tensor3d(values(size(bs), 9), bs as [number, number, number]);
        const bias = tf.tensor1d(values(n, 10));
        return ["linear", "relu", "leakyrelu"].map((activation) =>
          tf.fused.matMul({
            a,
            b,
            transposeA: ta,
            transposeB: tb,
            bias,
            activation: activation as "relu",
            leakyreluAlpha: 0.3,
          })
        );
      });
      assertAllClose(r, `fused matMul transpose ${ta}/${tb} batch ${batch}`);
    }
  }
});

Deno.test("the one-pass clip gradient on wasm matches the cpu backend at the bounds, outside and at NaN", async () => {
  // x at exactly min and max passes dy (both bounds inclusive), NaN does not.
  const xs = [-1, 0, 1e-30, 3, 6, 6.0000005, 7, NaN, -0];
  const dy = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const r = await onBoth(() => [
    tf.grad((v: tf.Tensor) => tf.clipByValue(v, 0, 6).mul(tf.tensor1d(dy)).sum())(tf.tensor1d(xs)),
    // ReLU6 as tfjs-layers writes it (relu, then clip), and its second derivative term.
    tf.grad((v: tf.Tensor) => tf.layers.reLU({ maxValue: 6 }).apply(v.mul(4)) as tf.Tensor)(
      tf.tensor1d([-1, 0.5, 1.5, 2]),
    ),
  ]);
  assert.deepEqual(Array.from(r.cpu[0]), [0, 2, 3, 4, 5, 0, 0, 0, 9]);
  assert.deepEqual(Array.from(r.wasm[0]), Array.from(r.cpu[0]));
  assert.deepEqual(Array.from(r.wasm[1]), [0, 4, 4, 0]);
  // A second derivative (the stock cpu gradient has none: LogicalAnd has no
  // gradient): d/du of clip(u) + u * mask(u) is 2 mask(u).
  await use("wasm");
  const second = tf.tidy(() =>
    tf.grad((v: tf.Tensor) =>
      tf.grad((u: tf.Tensor) => tf.clipByValue(u, -1, 1).mul(u).sum())(v).sum()
    )(tf.tensor1d([-2, -0.5, 0.5, 2]))
  );
  assert.deepEqual(Array.from(await second.data()), [0, 2, 2, 0]);
  second.dispose();
  // The one-pass kernel answered (else the stock kernels gave the answers above).
  const prof = await tf.profile(() =>
    tf.grad((v: tf.Tensor) => tf.clipByValue(v, 0, 6).sum())(tf.tensor1d(xs))
  );
  (prof.result as tf.Tensor).dispose();
  assert.ok(prof.kernels.some((k) => k.name === CLIP_GRAD_KERNEL));
  assert.ok(!prof.kernels.some((k) => k.name === "LogicalAnd"));
});

Deno.test("cast to bool on wasm is true for every value but 0, as on the cpu backend", async () => {
  const v = [-2.5, 0, -0, 1.5, 3.7, -0.2, 1e-30, NaN, 256, -1];
  const want = [1, 0, 0, 1, 1, 1, 1, 1, 1, 1];
  for (const backend of ["wasm", "cpu"] as const) {
    await use(backend);
    for (const from of ["float32", "int32"] as const) {
      const x = tf.tensor(v, [10], from === "int32" ? "float32" : from).cast(from);
      const y = x.cast("bool");
      const expected = from === "int32" ? v.map((a) => Number(Math.trunc(a || 0) !== 0)) : want;
      assert.deepEqual(Array.from(await y.data()), expected, `${backend} ${from}`);
      tf.dispose([x, y]);
    }
  }
  await use("wasm");
});

Deno.test("slice on wasm reads only what it takes and matches the cpu backend for ranks 1-5 and every dtype", async () => {
  const r = rand(11);
  const cases: { shape: number[]; begin: number[]; size: number[] }[] = [];
  for (let k = 0; k < 40; k++) {
    const rank = 1 + (k % 5);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor((r() + 0.5) * 5));
    const begin = shape.map((d) => Math.floor((r() + 0.5) * d));
    // -1 takes the rest of an axis; whole trailing axes make long contiguous runs.
    const size = shape.map((
      d,
      i,
    ) => (k % 3 === 0 && i > 0 ? -1 : 1 + Math.floor((r() + 0.5) * (d - begin[i]))));
    cases.push({ shape, begin, size });
  }
  cases.push({ shape: [3, 4, 50], begin: [1, 0, 0], size: [2, -1, -1] }, {
    shape: [6],
    begin: [2],
    size: [0],
  });
  for (const dtype of ["float32", "int32", "bool"] as const) {
    const results: string[][] = [];
    for (const backend of ["wasm", "cpu"] as const) {
      await use(backend);
      results.push(cases.map(({ shape, begin, size: extent }) => {
        const x = tf.tensor(values(size(shape), 3).map((v) => v * 9), shape).cast(dtype);
        const y = tf.slice(x, begin, extent);
        const out = `${y.shape}:${y.dtype}:${Array.from(y.dataSync()).join()}`;
        tf.dispose([x, y]);
        return out;
      }));
    }
    await use("wasm");
    assert.deepEqual(results[0], results[1], dtype);
  }
  // Its output is a new tensor of its own: disposing the input leaves it whole.
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
  const y = x.slice([1, 0], [2, 2]);
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), [3, 4, 5, 6]);
  y.dispose();
});
