/**
 * Every built-in plugin on the WebGPU backend (here Mesa llvmpipe: slow, but real
 * WebGPU), against the same run on WASM. Under Deno, tfjs-backend-webgpu cannot
 * read GPU-resident data synchronously (its readSync needs a canvas: "clearRect of
 * null"), so a plugin that calls `dataSync()`/`arraySync()` on a GPU tensor fails
 * here. Each run must succeed, give the figures of the WASM run (loosely for
 * numbers, exactly for the rest) and its tensors element by element, and leave
 * `tf.memory().numTensors` unchanged.
 *
 * Skipped when `navigator.gpu` gives no adapter.
 */
import assert from "node:assert/strict";
import { QUICK } from "./_quick.ts";
import { tf } from "../core/tf.ts";
import { initBackend, probeGpu } from "../backends/mod.ts";
import type { AnyPlugin } from "../core/plugin.ts";
import type { FigureValue, Result } from "../core/result.ts";
import { Lens } from "../lens.ts";
import { builtinPlugins, visualize } from "../plugins/mod.ts";

// Mesa warns on stderr without it.
if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");

/** Relative tolerance of numeric figures, WebGPU vs WASM (float32 on both). */
const DEFAULT_TOL = 1e-2;
const TOL: Record<string, Record<string, number> & { "*"?: number }> = {
  activations: { maxActivation: 1e-3 },
  // A few optimization steps of a ratio of energies: differences compound.
  "deep-dream": { "*": 5e-2 },
};
/** Figures compared exactly, numbers included. */
const EXACT = new Set(["summary"]);

interface Case {
  name: string;
  plugin: AnyPlugin;
  params: Record<string, unknown>;
}

const cases: Case[] = builtinPlugins.map((plugin) => ({
  name: plugin.name,
  plugin,
  params: QUICK[plugin.name] ?? {},
}));
// The Fourier parameterization maps images to spectra with tensor ops, not a read.
cases.push({
  name: "visualize (fourier)",
  plugin: visualize,
  params: { ...QUICK.visualize, param: "fourier" },
});

/** Relative tolerance of result tensors (of their largest magnitude). */
const TENSOR_TOL = 1e-3;
/**
 * Share of a tensor's elements that must agree. Sign steps (attacks), argmax
 * choices and many compounding optimization steps flip a few elements where
 * a gradient is near zero on one backend; everything else must agree everywhere.
 */
const SHARE: Record<string, number> = {
  adversarial: 0.98,
  "fooling-images": 0.95,
  "shallow-fooling": 0.98,
  "class-model": 0.95,
  visualize: 0.95,
  "visualize (fourier)": 0.95,
  "deep-dream": 0.95,
  invert: 0.95,
};

interface Outcome {
  figures: Record<string, FigureValue>;
  shapes: Record<string, number[]>;
  tensors: Record<string, Float32Array>;
  images: string[];
}

async function outcome(r: Result): Promise<Outcome> {
  const tensors: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(r.tensors)) {
    tensors[k] = Float32Array.from(await t.data() as ArrayLike<number>);
  }
  return {
    figures: { ...r.figures },
    shapes: Object.fromEntries(Object.entries(r.tensors).map(([k, t]) => [k, t.shape])),
    tensors,
    images: r.images.map((i) => i.name),
  };
}

function assertTensors(c: Case, got: Outcome, want: Outcome): void {
  const share = SHARE[c.name] ?? 1;
  for (const [k, w] of Object.entries(want.tensors)) {
    const g = got.tensors[k];
    let scale = 0, agree = 0, worst = 0;
    for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]));
    for (let i = 0; i < w.length; i++) {
      const err = Math.abs(g[i] - w[i]);
      worst = Math.max(worst, err);
      if (err <= TENSOR_TOL * scale + 1e-6 || (Number.isNaN(g[i]) && Number.isNaN(w[i]))) agree++;
    }
    assert.ok(
      agree >= share * w.length,
      `${c.name}: tensor ${k} agrees with wasm at ${agree} of ${w.length} elements ` +
        `(worst error ${worst} of ${scale}; tolerance ${TENSOR_TOL} relative, ${share} of them)`,
    );
  }
}

function assertFigures(c: Case, got: Outcome, want: Outcome): void {
  assert.deepEqual(got.shapes, want.shapes, `${c.name}: tensor shapes`);
  assert.deepEqual(got.images, want.images, `${c.name}: images`);
  if (EXACT.has(c.plugin.name)) {
    assert.deepEqual(got.figures, want.figures, `${c.name}: figures`);
    return;
  }
  assert.deepEqual(
    Object.keys(got.figures).sort(),
    Object.keys(want.figures).sort(),
    `${c.name}: figure names`,
  );
  const tols = TOL[c.plugin.name] ?? {};
  for (const [k, w] of Object.entries(want.figures)) {
    const g = got.figures[k];
    if (typeof w === "number" && typeof g === "number") {
      const tol = tols[k] ?? tols["*"] ?? DEFAULT_TOL;
      const err = Math.abs(g - w);
      assert.ok(
        err <= tol * Math.max(Math.abs(w), Math.abs(g)) + 1e-6 ||
          (Number.isNaN(g) && Number.isNaN(w)),
        `${c.name}: ${k} is ${g} on webgpu, ${w} on wasm (relative tolerance ${tol})`,
      );
    } else {
      assert.deepEqual(g, w, `${c.name}: ${k}`);
    }
  }
}

const gpu = await probeGpu();
if (!gpu.present) {
  Deno.test({ name: "plugins on webgpu (no WebGPU adapter: skipped)", ignore: true, fn() {} });
} else {
  // The WASM references first, all of them: data moves from WASM to WebGPU on
  // demand, never back (that would be a synchronous read on WebGPU).
  const reference = new Map<string, Outcome | Error>();
  await initBackend("wasm", { quiet: true });
  const wasmLens = await Lens.open({ backend: "wasm", quiet: true, count: 1 });
  for (const c of cases) {
    try {
      const r = await wasmLens.run(c.plugin, c.params);
      reference.set(c.name, await outcome(r));
      r.dispose();
    } catch (err) {
      reference.set(c.name, err as Error);
    }
  }
  wasmLens.dispose();
  const lens = await Lens.open({ backend: "webgpu", quiet: true, count: 1 });

  for (const c of cases) {
    Deno.test(`${c.name} on webgpu: succeeds, matches wasm, no leaks`, async () => {
      assert.equal(tf.getBackend(), "webgpu");
      const want = reference.get(c.name)!;
      if (want instanceof Error) throw new Error(`${c.name} failed on wasm: ${want.message}`);
      const before = tf.memory().numTensors;
      const r = await lens.run(c.plugin, c.params);
      try {
        const got = await outcome(r);
        assertFigures(c, got, want);
        assertTensors(c, got, want);
      } finally {
        r.dispose();
      }
      assert.equal(tf.memory().numTensors, before, `${c.name}: tensors leaked`);
    });
  }
}
