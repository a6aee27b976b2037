/**
 * The fuzz test of the native convolution kernels: random geometries (sizes
 * 1-64 even and odd, kernels 1-7, strides 1-3, dilations 1-2, channels 1-32,
 * batches 1-4, same/valid/explicit pads, depthwise multipliers 1-2), each run
 * forward and through both gradients by oneDNN and compared with tfjs's cpu
 * backend, each in a subprocess of its own so that a crash is counted and
 * reported with the case that caused it, not taken for the whole run.
 *
 * `tests/conv_fuzz_test.ts` runs a fixed-seed set of 150 cases; from the
 * shell, `deno task fuzz-conv --cases 2000 --seed 1` runs more.
 *
 * The cpu backend's gradient kernels ignore dilations, so its reference for a
 * dilated convolution is the undilated one with zeros inserted into the
 * filter, whose filter gradient is sampled back at the filter's taps.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { nativeStatus, useNativeKernels } from "../backends/native_kernels.ts";
import { seededRandom } from "../core/random.ts";

type ExplicitPad = [[0, 0], [number, number], [number, number], [0, 0]];

/** One convolution to check. */
export interface ConvCase {
  batch: number;
  h: number;
  w: number;
  inChannels: number;
  /** Output channels, or the channel multiplier of a depthwise convolution. */
  outChannels: number;
  kh: number;
  kw: number;
  stride: [number, number];
  dilation: number;
  pad: "same" | "valid" | ExplicitPad;
  depthwise: boolean;
  /** The forward pass also as FusedConv2D with a bias and ReLU. */
  fused: boolean;
  /** Seed of the values. */
  seed: number;
}

/** What one case gave, as the child process reports it. */
export interface CaseReport {
  /** Largest error over the largest |reference|, per output. */
  errors: Record<string, number>;
  /** Kernels that handed the call to WASM instead of answering natively, with why. */
  fallbacks: Record<string, string>;
}

/** Sum of multiply-adds of the forward pass, so the cpu reference stays quick. */
function macs(c: ConvCase): number {
  const out = Math.ceil(c.h / c.stride[0]) * Math.ceil(c.w / c.stride[1]);
  const perOut = c.kh * c.kw * (c.depthwise ? 1 : c.inChannels);
  const outC = c.depthwise ? c.inChannels * c.outChannels : c.outChannels;
  return c.batch * out * perOut * outC;
}

/** Output size along one axis, or 0 when the kernel does not fit. */
function outSize(n: number, k: number, s: number, d: number, pad: ConvCase["pad"], axis: number) {
  const ek = (k - 1) * d + 1;
  if (pad === "same") return Math.ceil(n / s);
  const [lo, hi] = pad === "valid" ? [0, 0] : pad[axis];
  const span = n + lo + hi - ek;
  return span < 0 ? 0 : Math.floor(span / s) + 1;
}

/**
 * `count` cases from `seed`. Channel counts are drawn log-uniformly, so few
 * channels (where blocked kernels pad and overrun) come up often, and one case
 * in six is a 1x1 strided projection shortcut (Xception, ResNet), mostly
 * over even sizes. Each case is
 * shrunk until its forward pass is at most `budget` multiply-adds.
 */
export function convCases(count: number, seed: number, budget = 1.5e6): ConvCase[] {
  const r = seededRandom(seed);
  const between = (lo: number, hi: number) => lo + r.int(hi - lo + 1);
  const logInt = (hi: number) => Math.min(hi, Math.floor(Math.exp(r.next() * Math.log(hi + 1))));
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const shortcut = r.int(6) === 0;
    const depthwise = !shortcut && r.int(3) === 0;
    const dilation = shortcut ? 1 : between(1, 2);
    // tfjs requires the strides or the dilations to be 1.
    const s = () => dilation > 1 ? 1 : between(1, 3);
    const stride: [number, number] = shortcut
      ? [2 + r.int(2), 2 + r.int(2)]
      : r.int(4) === 0
      ? [s(), s()]
      : [0, 0];
    if (stride[0] === 0) stride[0] = stride[1] = s();
    const kh = shortcut ? 1 : between(1, 7),
      kw = shortcut ? 1 : r.int(3) === 0 ? between(1, 7) : kh;
    const padKind = r.int(3);
    const pad: ConvCase["pad"] = shortcut
      ? (r.int(2) ? "same" : "valid")
      : padKind === 0
      ? "same"
      : padKind === 1
      ? "valid"
      : [[0, 0], [r.int(kh), r.int(kh)], [r.int(kw), r.int(kw)], [0, 0]];
    const c: ConvCase = {
      batch: between(1, 4),
      // Shortcuts mostly over even sizes, as in the networks that have them.
      h: shortcut ? 2 * between(1, 32) - (r.int(4) === 0 ? 1 : 0) : between(1, 64),
      w: shortcut ? 2 * between(1, 32) - (r.int(4) === 0 ? 1 : 0) : between(1, 64),
      inChannels: logInt(32) || 1,
      outChannels: depthwise ? between(1, 2) : logInt(32) || 1,
      kh,
      kw,
      stride,
      dilation,
      pad,
      depthwise,
      fused: r.int(2) === 0,
      seed: r.int(1 << 30),
    };
    if (c.inChannels < 1) c.inChannels = 1;
    while (macs(c) > budget) {
      if (c.batch > 1) c.batch--;
      else if (c.h > 8 && c.h >= c.w) c.h = Math.ceil(c.h * 0.8);
      else if (c.w > 8) c.w = Math.ceil(c.w * 0.8);
      else if (c.inChannels > 1) c.inChannels--;
      else if (c.outChannels > 1) c.outChannels--;
      else break;
    }
    const oh = outSize(c.h, c.kh, c.stride[0], c.dilation, c.pad, 1);
    const ow = outSize(c.w, c.kw, c.stride[1], c.dilation, c.pad, 2);
    if (oh > 0 && ow > 0 && macs(c) <= budget) cases.push(c);
  }
  return cases;
}

function values(shape: number[], seed: number): tf.Tensor {
  const r = seededRandom(seed);
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = r.next() - 0.5;
  return tf.tensor(v, shape);
}

/** The filter with d-1 zeros between its taps: the same convolution undilated. */
function dilate(f: tf.Tensor4D, d: number): tf.Tensor4D {
  if (d === 1) return f;
  const [kh, kw, i, o] = f.shape;
  const spread = f.reshape([kh, 1, kw, 1, i, o])
    .pad([[0, 0], [0, d - 1], [0, 0], [0, d - 1], [0, 0], [0, 0]])
    .reshape([kh * d, kw * d, i, o]);
  return spread.slice([0, 0, 0, 0], [(kh - 1) * d + 1, (kw - 1) * d + 1, i, o]) as tf.Tensor4D;
}

function kernels(depthwise: boolean) {
  return depthwise
    ? {
      forward: "DepthwiseConv2dNative",
      fused: "FusedDepthwiseConv2D",
      input: "DepthwiseConv2dNativeBackpropInput",
      filter: "DepthwiseConv2dNativeBackpropFilter",
    }
    : {
      forward: "Conv2D",
      fused: "FusedConv2D",
      input: "Conv2DBackpropInput",
      filter: "Conv2DBackpropFilter",
    };
}

/** Forward, fused forward, input gradient and filter gradient of a case on the current backend. */
function compute(c: ConvCase, reference: boolean): Record<string, Float32Array> {
  return tf.tidy(() => {
    const k = kernels(c.depthwise);
    const x = values([c.batch, c.h, c.w, c.inChannels], c.seed);
    const f = values([c.kh, c.kw, c.inChannels, c.outChannels], c.seed + 1) as tf.Tensor4D;
    // The reference runs the undilated convolution of the spread filter.
    const filter = reference ? dilate(f, c.dilation) : f;
    const d = reference ? 1 : c.dilation;
    const attrs = {
      strides: c.stride,
      pad: c.pad,
      dataFormat: "NHWC",
      dilations: [d, d],
      dimRoundingMode: undefined,
    };
    const run = (name: string, inputs: tf.NamedTensorMap, extra = {}) =>
      tf.engine().runKernel(
        name,
        inputs,
        { ...attrs, ...extra } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor;
    const y = run(k.forward, { x, filter });
    const out: Record<string, tf.Tensor> = { forward: y };
    if (c.fused) {
      const bias = values([y.shape[3]!], c.seed + 2);
      out.fused = run(k.fused, { x, filter, bias }, { activation: "relu" });
    }
    const dy = values(y.shape, c.seed + 3);
    out.dx = run(k.input, { dy, filter }, { inputShape: x.shape });
    const df = run(k.filter, { x, dy }, { filterShape: filter.shape });
    out.dfilter = reference && c.dilation > 1
      ? tf.stridedSlice(df, [0, 0, 0, 0], df.shape, [c.dilation, c.dilation, 1, 1])
      : df;
    return Object.fromEntries(
      Object.entries(out).map(([name, t]) => [name, t.dataSync() as Float32Array]),
    );
  });
}

/** Runs one case in this process: the cpu reference, then oneDNN on wasm. */
export async function runCase(c: ConvCase): Promise<CaseReport> {
  await initBackend("cpu", { quiet: true });
  const want = compute(c, true);
  await initBackend("wasm", { quiet: true });
  useNativeKernels(true);
  const before = { ...nativeStatus().calls };
  const got = compute(c, false);
  const errors: Record<string, number> = {};
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    let scale = 1e-6, err = g.length === w.length ? 0 : Infinity;
    for (let i = 0; i < w.length && err < Infinity; i++) {
      scale = Math.max(scale, Math.abs(w[i]));
      const e = Math.abs(g[i] - w[i]);
      err = e <= err ? err : Number.isNaN(e) ? Infinity : e;
    }
    errors[name] = err / scale;
  }
  const status = nativeStatus();
  const fallbacks: Record<string, string> = {};
  for (const [role, name] of Object.entries(kernels(c.depthwise))) {
    if (role === "fused" && !c.fused) continue;
    if ((status.calls[name] ?? 0) <= (before[name] ?? 0)) {
      fallbacks[name] = status.refused[name] ?? "not called natively";
    }
  }
  return { errors, fallbacks };
}

/** The outcome of one case run in its own process. */
export interface CaseOutcome {
  case: ConvCase;
  /** The child's report, or null when it died. */
  report: CaseReport | null;
  /** Exit code or signal and the end of stderr, when it died. */
  crash?: string;
}

const SELF = new URL(import.meta.url).pathname;

/** Runs one case in a child process, so that a crash there is counted here. */
export async function runIsolated(c: ConvCase): Promise<CaseOutcome> {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "--case", JSON.stringify(c)],
    stdout: "piped",
    stderr: "piped",
    env: { CONVLENS_NATIVE: "1" },
  }).output();
  const text = new TextDecoder().decode(child.stdout);
  const line = text.split("\n").find((l) => l.startsWith("REPORT "));
  if (child.success && line) return { case: c, report: JSON.parse(line.slice(7)) };
  const err = new TextDecoder().decode(child.stderr).trim().split("\n").slice(-3).join(" | ");
  return {
    case: c,
    report: null,
    crash: `exit ${child.code}${child.signal ? ` (${child.signal})` : ""}: ${err}`,
  };
}

/** Tally of a fuzz run. */
export interface FuzzSummary {
  cases: number;
  crashes: CaseOutcome[];
  /** Cases whose largest relative error exceeds the tolerance. */
  mismatches: CaseOutcome[];
  /** Cases where some kernel answered on WASM instead of natively. */
  fallbacks: CaseOutcome[];
}

/** Relative error allowed: float32 sums of up to ~16k products, in another order. */
export const TOLERANCE = 2e-4;

/** Runs the cases one after another, each in its own process. */
export async function fuzz(
  cases: ConvCase[],
  onCase?: (o: CaseOutcome, i: number) => void,
): Promise<FuzzSummary> {
  const summary: FuzzSummary = { cases: 0, crashes: [], mismatches: [], fallbacks: [] };
  for (const [i, c] of cases.entries()) {
    const o = await runIsolated(c);
    summary.cases++;
    if (!o.report) summary.crashes.push(o);
    else {
      if (Object.values(o.report.errors).some((e) => !(e <= TOLERANCE))) {
        summary.mismatches.push(o);
      }
      if (Object.keys(o.report.fallbacks).length) summary.fallbacks.push(o);
    }
    onCase?.(o, i);
  }
  return summary;
}

if (import.meta.main) {
  const { values: flags } = parseArgs({
    args: Deno.args,
    options: {
      case: { type: "string" },
      cases: { type: "string", default: "2000" },
      seed: { type: "string", default: "1" },
    },
  });
  if (flags.case) {
    const report = await runCase(JSON.parse(flags.case));
    console.log(`REPORT ${JSON.stringify(report)}`);
  } else {
    const n = Number(flags.cases), seed = Number(flags.seed);
    if (!Number.isInteger(n) || n < 1 || !Number.isInteger(seed)) {
      throw new RangeError("--cases must be a positive integer and --seed an integer");
    }
    const start = performance.now();
    const s = await fuzz(convCases(n, seed), (o, i) => {
      if (!o.report || Object.values(o.report.errors).some((e) => !(e <= TOLERANCE))) {
        console.log(`case ${i}: ${o.crash ?? JSON.stringify(o.report)} ${JSON.stringify(o.case)}`);
      }
      if ((i + 1) % 100 === 0) console.error(`${i + 1}/${n} cases`);
    });
    const seconds = ((performance.now() - start) / 1000).toFixed(0);
    console.log(
      `${s.cases} cases (seed ${seed}) in ${seconds} s: ${s.crashes.length} crashed, ` +
        `${s.mismatches.length} disagreed with cpu beyond ${TOLERANCE}, ` +
        `${s.fallbacks.length} answered partly on WASM`,
    );
    for (const o of s.fallbacks.slice(0, 10)) {
      console.log(`  fallback: ${JSON.stringify(o.report!.fallbacks)} ${JSON.stringify(o.case)}`);
    }
    if (s.crashes.length || s.mismatches.length) Deno.exit(1);
  }
}
