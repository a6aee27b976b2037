import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { assertClose } from "./_close.ts";
import { initBackend } from "../backends/mod.ts";
import { nativeStatus, useNativeKernels } from "../backends/native_kernels.ts";
import { CACHE_LIMIT, oneDnn } from "../backends/onednn.ts";
import { seededRandom } from "../core/random.ts";

// .ci/run installs libdnnl2 and sets CONVLENS_REQUIRE_NATIVE=1, so there these
// tests cannot be skipped; elsewhere they run wherever the library opens.
const dnnl = oneDnn();
const required = Deno.env.get("CONVLENS_REQUIRE_NATIVE") === "1";
if (required && typeof dnnl === "string") {
  throw new Error(`CONVLENS_REQUIRE_NATIVE=1 but oneDNN is unavailable: ${dnnl}`);
}
const ignore = typeof dnnl === "string";

type Side = "native" | "wasm" | "cpu";

async function use(side: Side): Promise<void> {
  await initBackend(side === "cpu" ? "cpu" : "wasm", { quiet: true });
  useNativeKernels(side === "native");
}

function values(shape: number[], seed: number): tf.Tensor {
  const r = seededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = r.next() - 0.5;
  return tf.tensor(v, shape);
}

/**
 * Runs `fn` on every side; checks that no side leaks a tensor and that each
 * kernel named in `native` answered natively at least once.
 */
async function onEach(
  fn: () => tf.Tensor[],
  native: string[] = [],
): Promise<Record<Side, Float32Array[]>> {
  const out = {} as Record<Side, Float32Array[]>;
  const calls = { ...nativeStatus().calls };
  for (const side of ["cpu", "wasm", "native"] as Side[]) {
    await use(side);
    const before = tf.memory().numTensors;
    const ts = tf.tidy(fn);
    out[side] = ts.map((t) => t.dataSync() as Float32Array);
    tf.dispose(ts);
    assert.equal(tf.memory().numTensors, before, `tensors leaked on ${side}`);
  }
  useNativeKernels(true);
  for (const name of native) {
    const now = nativeStatus().calls[name] ?? 0;
    assert.ok(now > (calls[name] ?? 0), `${name} never ran natively`);
  }
  return out;
}

function assertAgree(r: Record<Side, Float32Array[]>, what: string): void {
  r.cpu.forEach((want, i) => {
    assertClose(r.native[i], want, `${what} [${i}] native vs cpu`);
    assertClose(r.wasm[i], want, `${what} [${i}] wasm vs cpu`);
  });
}

type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];

interface ConvCase {
  batch: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  stride: number | [number, number];
  dilation: number | [number, number];
  pad: Pad;
}

const pairOf = (v: number | [number, number]): [number, number] => Array.isArray(v) ? v : [v, v];
const dilated = (c: ConvCase) => pairOf(c.dilation).some((d) => d > 1);

function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const stride of [1, 2]) {
    for (const pad of ["same", "valid"] as Pad[]) {
      for (const [kh, kw] of [[1, 1], [3, 3], [5, 2]]) {
        for (const batch of [1, 3]) {
          cases.push({ batch, h: 9, w: 11, kh, kw, stride, dilation: 1, pad });
        }
      }
    }
  }
  cases.push({
    batch: 2,
    h: 8,
    w: 5,
    kh: 3,
    kw: 3,
    stride: 2,
    dilation: 1,
    pad: [[0, 0], [1, 2], [
      2,
      0,
    ], [0, 0]],
  });
  cases.push({ batch: 2, h: 12, w: 13, kh: 3, kw: 3, stride: 1, dilation: 2, pad: "same" });
  cases.push({ batch: 1, h: 12, w: 13, kh: 3, kw: 2, stride: 1, dilation: 2, pad: "valid" });
  // Strides and dilations that differ per axis: a kernel that swaps height and
  // width (in strides, dilations, pads or sizes) agrees on every square case.
  cases.push({ batch: 2, h: 9, w: 11, kh: 3, kw: 2, stride: [1, 2], dilation: 1, pad: "same" });
  cases.push({ batch: 1, h: 10, w: 7, kh: 2, kw: 3, stride: [2, 1], dilation: 1, pad: "valid" });
  cases.push({ batch: 2, h: 10, w: 9, kh: 1, kw: 1, stride: [2, 3], dilation: 1, pad: "same" });
  cases.push({ batch: 1, h: 12, w: 13, kh: 3, kw: 3, stride: 1, dilation: [1, 2], pad: "same" });
  cases.push({ batch: 2, h: 11, w: 12, kh: 2, kw: 3, stride: 1, dilation: [2, 1], pad: "valid" });
  return cases;
}

/**
 * The filter gradient runs natively except for a 1x1 strided convolution with
 * few channels over a size the stride does not divide, which oneDNN 2.x
 * cannot run safely (see `convBackwardWeights`) and WASM answers.
 */
function filterGradient(c: ConvCase): string[] {
  const [sh, sw] = pairOf(c.stride);
  const shortcut = c.kh === 1 && c.kw === 1 && (sh > 1 || sw > 1);
  return shortcut && (c.h % sh !== 0 || c.w % sw !== 0) ? [] : ["Conv2DBackpropFilter"];
}

Deno.test({
  name: "native conv2d forward and both gradients match the cpu backend",
  ignore,
  fn: async () => {
    const [ci, co] = [3, 5];
    for (const c of convCases()) {
      const what = JSON.stringify(c);
      const r = await onEach(() => {
        const x = values([c.batch, c.h, c.w, ci], 1) as tf.Tensor4D;
        const f = values([c.kh, c.kw, ci, co], 2) as tf.Tensor4D;
        const weights = tf.sin(tf.range(0, co).add(1));
        const conv = (a: tf.Tensor4D, b: tf.Tensor4D) =>
          tf.conv2d(a, b, c.stride, c.pad, "NHWC", c.dilation);
        const y = conv(x, f);
        if (dilated(c)) return [y]; // tfjs has no gradient for dilated convs
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          conv(a as tf.Tensor4D, b as tf.Tensor4D).mul(weights).sum()
        )([x, f]);
        return [y, dx, df];
      }, dilated(c) ? ["Conv2D"] : ["Conv2D", "Conv2DBackpropInput", ...filterGradient(c)]);
      assertAgree(r, what);
    }
  },
});

Deno.test({
  name:
    "native depthwise conv2d (multipliers 1 and 2, fused bias/relu) and its gradients match cpu",
  ignore,
  fn: async () => {
    for (const c of convCases()) {
      for (const m of [1, 2]) {
        const what = `depthwise m${m} ${JSON.stringify(c)}`;
        const ci = 3;
        const r = await onEach(
          () => {
            const x = values([c.batch, c.h, c.w, ci], 16) as tf.Tensor4D;
            const f = values([c.kh, c.kw, ci, m], 17) as tf.Tensor4D;
            const weights = tf.cos(tf.range(0, ci * m));
            const stride = dilated(c) ? 1 : c.stride;
            const conv = (a: tf.Tensor4D, b: tf.Tensor4D) =>
              tf.depthwiseConv2d(a, b, stride, c.pad, "NHWC", c.dilation);
            const y = conv(x, f);
            const fused = tf.fused.depthwiseConv2d({
              x,
              filter: f,
              strides: stride,
              // typed as same/valid only, but explicit pads run too
              pad: c.pad as "same",
              dilations: c.dilation,
              bias: values([ci * m], 18),
              activation: "relu",
            });
            if (dilated(c)) return [y, fused];
            const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              conv(a as tf.Tensor4D, b as tf.Tensor4D).mul(weights).sum()
            )([x, f]);
            return [y, fused, dx, df];
          },
          dilated(c) ? ["DepthwiseConv2dNative", "FusedDepthwiseConv2D"] : [
            "DepthwiseConv2dNative",
            "FusedDepthwiseConv2D",
            "DepthwiseConv2dNativeBackpropInput",
            "DepthwiseConv2dNativeBackpropFilter",
          ],
        );
        assertAgree(r, what);
      }
    }
  },
});

Deno.test({
  name: "native fused conv2d (bias, relu) and its gradients match the cpu backend",
  ignore,
  fn: async () => {
    for (const activation of ["linear", "relu", "elu", "leakyrelu"] as const) {
      for (const bias of [true, false]) {
        const r = await onEach(() => {
          const x = values([2, 10, 10, 4], 3) as tf.Tensor4D;
          const f = values([3, 3, 4, 6], 4) as tf.Tensor4D;
          const b = bias ? values([6], 5) as tf.Tensor1D : undefined;
          const y = (a: tf.Tensor, w: tf.Tensor) =>
            tf.fused.conv2d({
              x: a as tf.Tensor4D,
              filter: w as tf.Tensor4D,
              bias: b,
              activation,
              leakyreluAlpha: 0.1,
              strides: 1,
              pad: "same",
            });
          const [dx, df] = tf.grads((a: tf.Tensor, w: tf.Tensor) => y(a, w).square().sum())([x, f]);
          return [y(x, f), dx, df];
        }, ["Conv2DBackpropInput", "Conv2DBackpropFilter"]);
        assertAgree(r, `${activation}, bias ${bias}`);
      }
    }
  },
});

Deno.test({
  name: "native matrix products (transposes, batch broadcast, fused bias and relu) match cpu",
  ignore,
  fn: async () => {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      for (const [ba, bb] of [[1, 1], [3, 3], [1, 3], [3, 1]]) {
        const [m, k, n] = [7, 13, 5];
        const r = await onEach(() => {
          const a = values(ta ? [ba, k, m] : [ba, m, k], 6) as tf.Tensor3D;
          const b = values(tb ? [bb, n, k] : [bb, k, n], 7) as tf.Tensor3D;
          const plain = tf.matMul(a, b, ta, tb);
          const fused = tf.fused.matMul({
            a,
            b,
            transposeA: ta,
            transposeB: tb,
            bias: values([n], 8),
            activation: "relu",
          });
          // tfjs's BatchMatMul gradient does not broadcast the batch.
          if (ba !== bb) return [plain, fused];
          const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
            tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D, ta, tb).square().sum()
          )([a, b]);
          return [plain, fused, da, db];
        }, ["BatchMatMul", "_FusedMatMul"]);
        assertAgree(r, `transpose ${ta}/${tb}, batch ${ba}/${bb}`);
      }
    }
    // A dense layer's sizes, and an activation the native path leaves to wasm.
    const r = await onEach(() => {
      const a = values([64, 2048], 9) as tf.Tensor2D;
      const b = values([2048, 256], 10) as tf.Tensor2D;
      const elu = tf.fused.matMul({ a, b, bias: values([256], 11), activation: "elu" });
      // Rank 4: the leading axes are one batch axis.
      const a4 = values([2, 3, 4, 6], 12) as tf.Tensor4D;
      const b4 = values([2, 3, 6, 5], 13) as tf.Tensor4D;
      return [tf.matMul(a, b), tf.matMul(b, a, true, true), elu, tf.matMul(a4, b4)];
    }, ["BatchMatMul"]);
    assertAgree(r, "dense 64x2048x256 (plain, transposed, with elu) and rank 4");
  },
});

Deno.test({
  name: "native max-pool gradients match cpu, ties (relu zeros) going to the first maximum",
  ignore,
  fn: async () => {
    const pools: [number, number, "same" | "valid"][] = [
      [2, 2, "valid"],
      [2, 2, "same"],
      [3, 2, "same"],
      [3, 1, "valid"],
      [3, 3, "same"],
    ];
    for (const [size, stride, pad] of pools) {
      for (const [h, w] of [[8, 8], [9, 7]]) {
        const r = await onEach(() => {
          // Rounded and relu'd: most windows hold ties, many all zeros.
          const x = values([2, h, w, 3], 14).mul(4).round().relu() as tf.Tensor4D;
          const [dx] = tf.grads((a: tf.Tensor) =>
            tf.maxPool(a as tf.Tensor4D, size, stride, pad).mul(tf.range(1, 4)).sum()
          )([x]);
          return [dx];
        }, ["MaxPoolGrad"]);
        assertAgree(r, `max pool ${size}/${stride} ${pad} on ${h}x${w}`);
      }
    }
  },
});

Deno.test({
  name: "the ReLU gradient runs natively, matches cpu, keeps second derivatives and the rules",
  ignore,
  fn: async () => {
    const { withReluRule } = await import("../core/gradients.ts");
    const r = await onEach(() => {
      const x = values([4, 9, 7, 5], 19).round(); // many exact zeros
      const w = values([4, 9, 7, 5], 20);
      const f = (v: tf.Tensor) => tf.relu(v).mul(w).sum();
      const first = tf.grad(f)(x);
      const second = tf.grad((v: tf.Tensor) =>
        tf.grad((u: tf.Tensor) => tf.relu(u).square().sum())(v).mul(w).sum()
      )(x);
      const guided = withReluRule("guided", () => tf.grad(f)(x));
      return [first, second, guided];
    }, ["ConvlensReluGrad"]);
    assertAgree(r, "relu gradients");
  },
});

Deno.test({
  name: "native sums over leading axes (bias gradients) match cpu; other sums are left to wasm",
  ignore,
  fn: async () => {
    const r = await onEach(() => {
      const x = values([16, 9, 7, 5], 15);
      return [
        x.sum([0, 1, 2]),
        x.sum([0, 1], true),
        x.sum(0),
        x.sum([1, 2]),
        x.sum(),
        x.reshape([1008, 5]).sum(0),
      ];
    }, ["Sum"]);
    assertAgree(r, "sums");
  },
});

Deno.test({
  name: "native kernels are registered, named in the status, and survive WASM heap growth",
  ignore,
  fn: async () => {
    await use("native");
    const s = nativeStatus();
    assert.deepEqual(s.kernels.slice().sort(), [
      "BatchMatMul",
      "Conv2D",
      "Conv2DBackpropFilter",
      "Conv2DBackpropInput",
      "ConvlensClipGrad",
      "ConvlensReluGrad",
      "DepthwiseConv2dNative",
      "DepthwiseConv2dNativeBackpropFilter",
      "DepthwiseConv2dNativeBackpropInput",
      "FusedConv2D",
      "FusedDepthwiseConv2D",
      "MaxPoolGrad",
      "Sum",
      "_FusedMatMul",
    ]);
    assert.ok(s.threads >= 1);
    // The heap's base address can move when WASM memory grows; every call
    // takes it afresh, so results stay right across a large allocation.
    const before = tf.memory().numTensors;
    const x = values([1, 16, 16, 8], 11) as tf.Tensor4D;
    const f = values([3, 3, 8, 8], 12) as tf.Tensor4D;
    const conv = () => tf.tidy(() => tf.conv2d(x, f, 1, "same").dataSync().slice());
    const first = conv();
    const big = tf.zeros([64, 1024, 1024]); // 256 MB: forces growth
    const second = conv();
    assert.deepEqual(second, first);
    tf.dispose([x, f, big]);
    assert.equal(tf.memory().numTensors, before);
  },
});

Deno.test({
  name: "the primitive cache keeps at most its limit, destroying the least recently used",
  ignore,
  fn: async () => {
    const lib = dnnl as Exclude<typeof dnnl, string>;
    lib.setCacheLimit(3);
    try {
      // Eight shapes, twice over: every op is destroyed and made again.
      const shapes = Array.from({ length: 8 }, (_, i) => [3 + i, 5, 4 + i]);
      for (let pass = 0; pass < 2; pass++) {
        for (const [m, k, n] of shapes) {
          const r = await onEach(() => [
            tf.matMul(values([m, k], m) as tf.Tensor2D, values([k, n], n) as tf.Tensor2D),
          ], ["BatchMatMul"]);
          assertAgree(r, `matmul ${m}x${k}x${n}, pass ${pass}`);
          assert.ok(lib.cachedOps <= 3, `${lib.cachedOps} ops cached`);
        }
      }
    } finally {
      lib.setCacheLimit(CACHE_LIMIT);
    }
  },
});

Deno.test("without oneDNN (library missing, turned off) WASM runs alone and says why", async () => {
  const core = new URL("../core/", import.meta.url).href;
  const backends = new URL("../backends/", import.meta.url).href;
  const code = `
    import { tf } from "${core}tf.ts";
    import { initBackend, nativeStatus } from "${backends}mod.ts";
    await initBackend("wasm");
    const y = tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 1]), 1, "same");
    const s = nativeStatus();
    console.log(JSON.stringify({ kernels: s.kernels.length, why: s.why, y: y.dataSync()[5] }));`;
  // The backend line says it once: what is missing, what it costs, what to do.
  const cases: [Record<string, string>, RegExp, RegExp][] = [
    [
      { CONVLENS_ONEDNN: "/nonexistent/libdnnl.so.2" },
      /not loaded.*apt install libdnnl2/,
      /backend wasm without oneDNN \(about 10x slower on convolutions at 224x224: install oneDNN 2\.x \(Debian\/Ubuntu: apt install libdnnl2\) or set CONVLENS_ONEDNN\)/,
    ],
    [
      { CONVLENS_NATIVE: "0" },
      /turned off/,
      /backend wasm without oneDNN \(turned off by the environment\)/,
    ],
  ];
  for (const [env, why, line] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    assert.equal(r.kernels, 0);
    assert.match(r.why, why);
    assert.equal(r.y, 9); // an interior pixel of a 3x3 box sum of ones
    assert.match(stderr, line);
    assert.equal(stderr.split("\n").filter((l) => /oneDNN/.test(l)).length, 1, stderr);
  }
});

Deno.test({
  name: "a buffer smaller than oneDNN's descriptor is refused before the call, saying which",
  ignore,
  fn: async () => {
    await use("native");
    const x = values([1, 9, 9, 3], 30);
    // dy of the wrong size for a stride-1 "same" conv (9x9x4 expected).
    const dy = values([1, 5, 5, 4], 31);
    const before = nativeStatus().calls.Conv2DBackpropFilter ?? 0;
    try {
      tf.dispose(
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          strides: [1, 1],
          pad: "same",
          dataFormat: "NHWC",
          dimRoundingMode: undefined,
          filterShape: [3, 3, 3, 4],
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      );
    } catch {
      // What the WASM kernel makes of the bad call does not matter here.
    }
    assert.equal(nativeStatus().calls.Conv2DBackpropFilter ?? 0, before);
    assert.match(
      nativeStatus().refused.Conv2DBackpropFilter,
      /would read 1296 bytes through dy, which holds 400/,
    );
    tf.dispose([x, dy]);
  },
});

Deno.test({
  name: "oneDNN's OpenMP threads wait passively unless the user chose a policy",
  ignore,
  fn: async () => {
    await use("native");
    const { openmp } = nativeStatus();
    const user = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"].filter((v) =>
      Deno.env.get(v) !== undefined
    );
    // The test runs with -A, so the variables are readable and settable.
    if (user.length && openmp !== "OMP_WAIT_POLICY=passive") {
      assert.match(openmp ?? "", /as the user set it/);
    } else {
      assert.equal(openmp, "OMP_WAIT_POLICY=passive");
      assert.equal(Deno.env.get("OMP_WAIT_POLICY"), "passive");
    }
  },
});

Deno.test({
  name:
    "kept filter copies follow the filter: twelve filters of one geometry in turn, and a variable assigned anew",
  ignore,
  fn: async () => {
    // More filters than copies are kept (8), each seen several times in turn,
    // so copies are made, reused and given to other filters.
    await use("cpu");
    const xs = values([2, 9, 9, 16], 40);
    const filters = Array.from({ length: 12 }, (_, i) => values([3, 3, 16, 32], 41 + i));
    const order = [0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 5, 11, 0, 1, 2, 3, 4, 5, 6, 7];
    const r = await onEach(() =>
      order.flatMap((i) => {
        const y = tf.conv2d(xs as tf.Tensor4D, filters[i] as tf.Tensor4D, 1, "same");
        const dx = tf.conv2dTranspose(y, filters[i] as tf.Tensor4D, [2, 9, 9, 16], 1, "same");
        return [y, dx];
      }), ["Conv2D", "Conv2DBackpropInput"]);
    assertAgree(r, "alternating filters");
    // A variable assigned new weights between calls (as an optimizer step does).
    await use("native");
    const v = tf.variable(filters[0]);
    const outs: Float32Array[] = [];
    for (const f of [filters[0], filters[1], filters[0]]) {
      v.assign(f);
      for (let k = 0; k < 2; k++) {
        const y = tf.conv2d(xs as tf.Tensor4D, v as tf.Tensor4D, 1, "same");
        outs.push(y.dataSync() as Float32Array);
        y.dispose();
      }
    }
    await use("cpu");
    for (
      const [j, f] of [filters[0], filters[0], filters[1], filters[1], filters[0], filters[0]]
        .entries()
    ) {
      const y = tf.conv2d(xs as tf.Tensor4D, f as tf.Tensor4D, 1, "same");
      assertClose(outs[j], y.dataSync() as Float32Array, `assigned variable, call ${j}`);
      y.dispose();
    }
    v.dispose();
    tf.dispose([xs, ...filters]);
  },
});

Deno.test({
  name: "the native clip gradient keeps both bounds inclusive, NaN out, like the cpu backend",
  ignore,
  fn: async () => {
    // 5,000 elements (the native kernel takes 4,096 or more): bounds, their
    // float neighbours, signed zeros, subnormals, NaN and infinities, repeated.
    const edge = [-1, 0, -0, 1e-45, -1e-45, 1e-30, 3, 6, 6.0000005, 5.9999995, 7, NaN, -Infinity];
    const xs = Array.from({ length: 5000 }, (_, i) => edge[i % edge.length]);
    const dy = Array.from({ length: 5000 }, (_, i) => 1 + (i % 7));
    const before = nativeStatus().calls.ConvlensClipGrad ?? 0;
    const r = await onEach(() => [
      tf.grad((v: tf.Tensor) => tf.clipByValue(v, 0, 6).mul(tf.tensor1d(dy)).sum())(
        tf.tensor1d(xs),
      ),
      tf.grad((v: tf.Tensor) => tf.clipByValue(v, -2.5, 0.1).mul(tf.tensor1d(dy)).sum())(
        tf.tensor1d(xs.map((x) => x - 2.5)),
      ),
    ]);
    assert.deepEqual(Array.from(r.native[0]), Array.from(r.cpu[0]));
    assert.deepEqual(Array.from(r.native[1]), Array.from(r.cpu[1]));
    assert.ok((nativeStatus().calls.ConvlensClipGrad ?? 0) > before, "answered natively");
  },
});
