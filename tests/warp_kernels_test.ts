import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { runSampleGridKernel, runWarpKernel, type WarpMap } from "../core/images/warp_kernel.ts";
import { affineGrid, sampleBilinear, warpAffine } from "../plugins/train/augment/mod.ts";
import { compileWat, generatedModule, OUT_PATH, WAT_PATH } from "../scripts/build_wasm.ts";
import { naiveWarp } from "./_warp_reference.ts";

/** A small seeded generator, so failures reproduce. */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function images(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  const r = rand(seed);
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => r() * 2 - 0.5);
  return tf.tensor4d(v, shape);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/** A crop window [top, left, height, width] resized to H x W, as the crop transforms map it. */
function cropMap(t: number, l: number, ch: number, cw: number, H: number, W: number): WarpMap {
  const sx = cw / W, sy = ch / H;
  return [sx, 0, l + 0.5 * sx - 0.5, 0, sy, t + 0.5 * sy - 0.5];
}

/** Every path of the kernels, for a batch of n images of h x w, output H x W. */
function families(
  n: number,
  h: number,
  w: number,
  H: number,
  W: number,
): Record<string, WarpMap[]> {
  const r = rand(n * 1000 + h * 31 + w);
  const each = (f: (i: number) => WarpMap) => Array.from({ length: n }, (_, i) => f(i));
  return {
    "identity": each(() => [1, 0, 0, 0, 1, 0]),
    "flips and mirrors": each((i) => [
      i % 2 ? -1 : 1,
      0,
      i % 2 ? w - 1 : 0,
      0,
      i % 3 ? -1 : 1,
      i % 3 ? h - 1 : 0,
    ]),
    // Shifts by whole pixels, partly and wholly outside the image.
    "whole-pixel shifts": each((i) => [
      i % 2 ? -1 : 1,
      0,
      (i % 2 ? w - 1 : 0) + Math.round((r() - 0.5) * w * 1.6),
      0,
      i % 4 ? 1 : -1,
      (i % 4 ? 0 : h - 1) + Math.round((r() - 0.5) * h * 1.6),
    ]),
    "crop windows": each(() => {
      const ch = 1 + Math.floor(r() * h), cw = 1 + Math.floor(r() * w);
      return cropMap(Math.floor(r() * (h - ch + 1)), Math.floor(r() * (w - cw + 1)), ch, cw, H, W);
    }),
    "scales and shifts past the border": each(() => [
      0.3 + r() * 1.7,
      0,
      (r() - 0.5) * w,
      0,
      0.3 + r() * 1.7,
      (r() - 0.5) * h,
    ]),
    "mirrored scales": each(() => [-(0.5 + r()), 0, w * r(), 0, 0.5 + r(), (r() - 0.5) * 3]),
    "rotations, shears, far outside": each((i) => {
      const a = (r() - 0.5) * 2, s = 0.7 + r() * 0.6, far = i === n - 1 ? 10 * (w + h) : 0;
      return [
        s * Math.cos(a),
        -Math.sin(a) + r() * 0.2,
        r() * 4 + far,
        Math.sin(a),
        s * Math.cos(a),
        r() * 3,
      ];
    }),
  };
}

for (const backend of ["wasm", "cpu"] as const) {
  for (const c of [1, 2, 3, 4, 5]) {
    Deno.test(`warp kernel on ${backend} matches a naive bilinear loop and the stock-op warp, ${c} channel(s)`, async () => {
      await initBackend(backend, { quiet: true });
      const shapes: [number, number, number, number, number][] = [
        [7, 13, 11, 13, 11],
        [6, 9, 16, 12, 7],
        [5, 24, 5, 3, 19],
      ];
      for (const [n, h, w, H, W] of shapes) {
        const x = images([n, h, w, c], h * w + c);
        const xv = await x.data() as Float32Array;
        for (const [name, maps] of Object.entries(families(n, h, w, H, W))) {
          const size: [number, number] = name.includes("flip") || name.includes("whole")
            ? [h, w]
            : [H, W];
          const before = tf.memory().numTensors;
          const dataIds = tf.engine().backend.numDataIds();
          const got = warpAffine(x, maps, size);
          assert.equal(tf.memory().numTensors, before + 1, `${name}: one new tensor`);
          const gv = await got.data() as Float32Array;
          const want = naiveWarp(xv, x.shape, maps, size[0], size[1]);
          const what = `${backend} ${name} [${n},${h},${w},${c}] -> ${size}`;
          assert.ok(maxDiff(gv, want) < 2e-6, `${what}: ${maxDiff(gv, want)} from the naive loop`);
          const stock = warpAffine(x, maps, size, { kernel: false });
          assert.ok(
            maxDiff(gv, await stock.data() as Float32Array) < 1e-5,
            `${what}: from stock ops`,
          );
          tf.dispose([got, stock]);
          assert.equal(tf.engine().backend.numDataIds(), dataIds, `${what}: scratch freed`);
        }
        x.dispose();
      }
    });
  }

  Deno.test(`flips and whole-pixel shifts on ${backend} copy bits: -0, NaN payloads and subnormals survive`, async () => {
    await initBackend(backend, { quiet: true });
    const [n, h, w, c] = [4, 5, 9, 3];
    const bits = new Int32Array(n * h * w * c).map((_, i) => (i * 2654435761) | 0);
    bits[0] = 0x80000000 | 0; // -0
    bits[1] = 0x7fc12345; // a NaN with a payload
    bits[2] = 1; // the smallest subnormal
    const x = tf.tensor4d(new Float32Array(bits.buffer), [n, h, w, c]);
    const maps: WarpMap[] = [[-1, 0, w - 1, 0, 1, 0], [1, 0, 0, 0, -1, h - 1], [
      -1,
      0,
      w - 1,
      0,
      -1,
      h - 1,
    ], [
      1,
      0,
      2,
      0,
      1,
      -1,
    ]];
    const once = warpAffine(x, maps, [h, w]);
    const back = warpAffine(once, maps.slice(0, 3).concat([[1, 0, -2, 0, 1, 1]]), [h, w]);
    const got = new Int32Array((await back.data() as Float32Array).buffer);
    for (let b = 0; b < 3; b++) {
      const at = b * h * w * c;
      assert.deepEqual(
        got.subarray(at, at + h * w * c),
        bits.subarray(at, at + h * w * c),
        `image ${b}`,
      );
    }
    // Mirrored twice, the first pixel is back, bit for bit.
    assert.equal(got[0], 0x80000000 | 0);
    assert.equal(got[1], 0x7fc12345);
    tf.dispose([x, once, back]);
  });

  Deno.test(`grid kernel on ${backend} matches the stock gather for affine and distorted grids`, async () => {
    await initBackend(backend, { quiet: true });
    for (const c of [1, 3, 4, 6]) {
      const x = images([3, 10, 14, c], c);
      const maps = families(3, 10, 14, 8, 12)["rotations, shears, far outside"];
      const { gx, gy } = affineGrid(maps, [8, 12]);
      // A barrel-like distortion of the grid, so that it is no affine map.
      const [dx, dy] = tf.tidy(
        () => [gx.add(gx.sub(7).square().mul(0.02)), gy.sub(gy.sub(5).abs().mul(0.1))],
      );
      for (const [gridX, gridY] of [[gx, gy], [dx, dy]] as [tf.Tensor3D, tf.Tensor3D][]) {
        const got = runSampleGridKernel(x, gridX, gridY);
        assert.ok(got, "the backend has the grid kernel");
        const want = sampleBilinear(x, gridX, gridY, { kernel: false });
        assert.ok(
          maxDiff(await got.data() as Float32Array, await want.data() as Float32Array) < 1e-5,
          `${c} channels`,
        );
        tf.dispose([got, want]);
      }
      tf.dispose([x, gx, gy, dx, dy]);
    }
  });
}

Deno.test("the warp kernels on wasm (SIMD) and cpu (JS) agree on a 64-image batch of every kind", async () => {
  const n = 24, h = 40, w = 36;
  const all = Object.values(families(n, h, w, 32, 30)).flat().slice(0, n * 7);
  const results: Float32Array[] = [];
  for (const backend of ["wasm", "cpu"]) {
    await initBackend(backend, { quiet: true });
    const x = images([all.length, h, w, 3], 7);
    const y = warpAffine(x, all, [32, 30]);
    results.push(await y.data() as Float32Array);
    tf.dispose([x, y]);
  }
  await initBackend("wasm", { quiet: true });
  assert.ok(maxDiff(results[0], results[1]) < 1e-6, `${maxDiff(results[0], results[1])}`);
});

Deno.test("the warp kernels reject maps that do not match the batch, naming the fix", async () => {
  await initBackend("wasm", { quiet: true });
  const x = images([2, 4, 4, 3], 1);
  const g = tf.zeros([1, 2, 2]) as tf.Tensor3D;
  const xi = x.toInt() as tf.Tensor4D;
  const before = tf.memory().numTensors;
  assert.throws(
    () => runWarpKernel(x, [[1, 0, 0, 0, 1, 0]], [4, 4]),
    /1 maps for images of shape \[2,4,4,3\]; give one map of 6 numbers per image/,
  );
  assert.throws(
    () => runSampleGridKernel(x, g, g),
    /give both as \[n, height, width\] with the images' n/,
  );
  // An int32 batch has no kernel: the caller composes the warp from stock ops.
  assert.equal(runWarpKernel(xi, [[1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0]], [4, 4]), undefined);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, g, xi]);
});

Deno.test("backends/_warp_simd.ts is what backends/warp_simd.wat builds to (deno task build-wasm)", async () => {
  const bytes = await compileWat(await Deno.readTextFile(WAT_PATH));
  assert.equal(await Deno.readTextFile(OUT_PATH), generatedModule(bytes));
  assert.ok(WebAssembly.validate(bytes));
});
