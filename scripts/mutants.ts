/**
 * Mutation testing by hand: each mutant is a deliberate bug in central code
 * (gradient rules, receptive fields, occlusion, integrated gradients, PGD,
 * Szegedy, top-k, native and WASM kernels, training, costs, ...). Each is
 * applied to a scratch copy of the tracked tree, the tests that should notice
 * are run there, and a table says which mutants were caught. A mutant that
 * survives names a blind spot of the suite. The unmutated copy runs each test
 * list first, so that "caught" means the mutation, not a broken test.
 *
 * StrykerJS was considered: its TypeScript mutators generate hundreds of
 * mutants whose runs (each a `deno test` of several minutes here) would not fit
 * an evening on two cores; a short list aimed at the bugs that matter does.
 *
 * ```sh
 * deno task mutants                 # all, table to stdout and out/mutants.md
 * deno task mutants ig-path guided  # some, by name
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** One deliberate bug. */
interface Mutant {
  /** Short name. */
  name: string;
  /** What the bug is, in words. */
  bug: string;
  /** File (from the repository root) that gets the bug. */
  file: string;
  /** Exact text to replace (must occur; every occurrence is replaced). */
  find: string;
  /** Its replacement. */
  replace: string;
  /** Test files that must fail. */
  tests: string[];
  /** A `--filter` for those tests. */
  filter?: string;
}

const MUTANTS: Mutant[] = [
  {
    name: "guided-sign",
    bug: "guided backprop lets negative gradients through instead of positive ones",
    file: "core/gradients.ts",
    find: 'if (rule === "guided") return tf.mul(tf.relu(dy), m);',
    replace: 'if (rule === "guided") return tf.mul(tf.relu(tf.neg(dy)), m);',
    tests: ["tests/attribute_test.ts"],
    filter: "guided",
  },
  {
    name: "deconv-mask",
    bug: "the DeconvNet rule also applies the forward ReLU mask (it becomes guided backprop)",
    file: "core/gradients.ts",
    find: 'if (rule === "deconv") return tf.relu(dy);',
    replace: 'if (rule === "deconv") return tf.mul(tf.relu(dy), m);',
    tests: ["tests/attribute_test.ts"],
    filter: "guided",
  },
  {
    name: "rf-jump",
    bug: "the receptive field's jump ignores the stride",
    file: "core/receptive_field.ts",
    find: "rf.jump[a] = prev.jump[a] * s;",
    replace: "rf.jump[a] = prev.jump[a];",
    tests: ["tests/receptive_field_test.ts", "tests/design_test.ts"],
  },
  {
    name: "rf-start",
    bug: "the receptive field's start forgets the padding",
    file: "core/receptive_field.ts",
    find: "rf.start[a] = prev.start[a] + ((keff - 1) / 2 - p) * prev.jump[a];",
    replace: "rf.start[a] = prev.start[a] + ((keff - 1) / 2) * prev.jump[a];",
    tests: ["tests/receptive_field_test.ts", "tests/top_patches_test.ts"],
  },
  {
    name: "occlusion-size",
    bug: "the occluding square is one pixel too big",
    file: "plugins/attribute/occlusion.ts",
    find: "tf.less(y, start.add(size))",
    replace: "tf.less(y, start.add(size + 1))",
    tests: ["tests/occlusion_test.ts"],
  },
  {
    name: "ig-path",
    bug: "integrated gradients' path points are k/(steps+1): the path stops short of x",
    file: "plugins/attribute/integrated_gradients.ts",
    find: "alphas: Array.from({ length: steps + 1 }, (_, k) => k / steps),",
    replace: "alphas: Array.from({ length: steps + 1 }, (_, k) => k / (steps + 1)),",
    tests: ["tests/attribute_test.ts"],
    filter: "integrated",
  },
  {
    name: "ig-times-x",
    bug: "integrated gradients multiply by x instead of x - x'",
    file: "plugins/attribute/integrated_gradients.ts",
    find: "const attribution = tf.tidy(() => tf.mul(diff, sum.reshape(x.shape))) as tf.Tensor4D;",
    replace: "const attribution = tf.tidy(() => tf.mul(x, sum.reshape(x.shape))) as tf.Tensor4D;",
    tests: ["tests/attribute_test.ts"],
    filter: "integrated",
  },
  {
    name: "saliency-mean",
    bug: "the saliency map averages the gradient magnitude over channels instead of taking the max",
    file: "plugins/attribute/attribution.ts",
    find: 'if (reduce === "max-abs") return attribution.abs().max(3) as tf.Tensor3D;',
    replace: 'if (reduce === "max-abs") return attribution.abs().mean(3) as tf.Tensor3D;',
    tests: ["tests/attribute_test.ts"],
    filter: "attributionMap",
  },
  {
    name: "gradcam-sum",
    bug: "Grad-CAM weights each channel by the summed gradient instead of its mean",
    file: "plugins/attribute/grad_cam.ts",
    find: "const alpha = tf.mean(grad, [1, 2], true);",
    replace: "const alpha = tf.sum(grad, [1, 2], true);",
    tests: ["tests/attribute_test.ts"],
    filter: "grad-cam",
  },
  {
    name: "pgd-clean-gradient",
    bug: "PGD takes every step along the clean image's gradient",
    file: "plugins/fool/fgsm_pgd.ts",
    find: "const g = pixelGradient(net, adv, objective);\n      const next",
    replace: "const g = pixelGradient(net, x, objective);\n      const next",
    tests: ["tests/fool_test.ts"],
  },
  {
    name: "fgsm-no-sign",
    bug: "FGSM steps along the raw gradient instead of its sign",
    file: "plugins/fool/fgsm_pgd.ts",
    find: 'return tf.tidy(() => (norm === "linf" ? signOf(g) : g.div(l2PerImage(g))));',
    replace: 'return tf.tidy(() => (norm === "linf" ? g.clone() : g.div(l2PerImage(g))));',
    tests: ["tests/fool_test.ts"],
  },
  {
    name: "szegedy-ascent",
    bug: "Szegedy's search climbs the target loss instead of descending it",
    file: "plugins/fool/szegedy.ts",
    find: "const grad = g.neg().add(r.mul(cT).mul(2));",
    replace: "const grad = g.add(r.mul(cT).mul(2));",
    tests: ["tests/fool_test.ts"],
  },
  {
    name: "topk-drop",
    bug: "top-k keeps one fewer patch than asked",
    file: "core/jobs/mergeable.ts",
    find: "return [...a, ...b].sort((x, y) => compareKeys(key(x), key(y))).slice(0, k);",
    replace: "return [...a, ...b].sort((x, y) => compareKeys(key(x), key(y))).slice(0, k - 1);",
    tests: ["tests/top_patches_test.ts"],
  },
  {
    name: "topk-ties",
    bug: "top-k breaks ties towards the later image",
    file: "plugins/inspect/top_patches.ts",
    find: "return mergeTopK(kept, fresh, k, (h) => [-h.value, h.image]);",
    replace: "return mergeTopK(kept, fresh, k, (h) => [-h.value, -h.image]);",
    tests: ["tests/top_patches_test.ts"],
  },
  {
    name: "native-stride-axes",
    bug: "native convolutions take the strides as [width, height]",
    file: "backends/native_kernels.ts",
    find: "strides: [info.strideHeight, info.strideWidth],",
    replace: "strides: [info.strideWidth, info.strideHeight],",
    tests: ["tests/native_kernels_test.ts"],
    filter: "/conv2d forward|depthwise/",
  },
  {
    name: "native-bias",
    bug: "native convolutions drop the bias",
    file: "backends/native_kernels.ts",
    find: "const op = dnnl.convForward(g, bias != null, activation);",
    replace: "const op = dnnl.convForward(g, false, activation);",
    tests: ["tests/native_kernels_test.ts"],
    filter: "fused",
  },
  {
    name: "wasm-stride-axes",
    bug: "the WASM conv kernels take the strides as [width, height]",
    file: "backends/wasm_kernels.ts",
    find: "    sh: info.strideHeight,\n    sw: info.strideWidth,",
    replace: "    sh: info.strideWidth,\n    sw: info.strideHeight,",
    tests: ["tests/native_kernels_test.ts"],
    filter: "/conv2d forward|depthwise/",
  },
  {
    name: "adam-bias-correction",
    bug: "Adam forgets the bias correction of its second moment",
    file: "core/train/optimizers.ts",
    find: "vHat = v2.div(1 - beta2 ** step);",
    replace: "vHat = v2;",
    tests: ["tests/train_test.ts"],
  },
  {
    name: "cosine-half",
    bug: "the cosine schedule is missing its factor 1/2",
    file: "core/train/schedule.ts",
    find: "return low + (lr - low) * 0.5 * (1 + Math.cos(Math.PI * t));",
    replace: "return low + (lr - low) * (1 + Math.cos(Math.PI * t));",
    tests: ["tests/train_test.ts"],
  },
  {
    name: "fit-no-reseed",
    bug: "fit no longer redraws dropout masks at every step",
    file: "core/train/fit.ts",
    find: '["Dropout", "SpatialDropout1D"].includes(l.getClassName()) ||',
    replace: '["NoSuchLayer"].includes(l.getClassName()) ||',
    tests: ["tests/train_test.ts"],
  },
  {
    name: "deletion-ascending",
    bug: "deletion removes the least important pixels first",
    file: "plugins/attribute/eval/deletion.ts",
    find: "order.sort((a, b) => (v ? v[b] - v[a] : 0) || tie[a] - tie[b]);",
    replace: "order.sort((a, b) => (v ? v[a] - v[b] : 0) || tie[a] - tie[b]);",
    tests: ["tests/attribute_test.ts"],
    filter: "deletion",
  },
  {
    name: "macs-no-cin",
    bug: "a conv's multiply-adds forget the input channels",
    file: "plugins/design/costs.ts",
    find:
      "return { macs: spatial * out[2] * kh * kw * cin, kernelWeights: kh * kw * cin * out[2] };",
    replace: "return { macs: spatial * out[2] * kh * kw, kernelWeights: kh * kw * cin * out[2] };",
    tests: ["tests/design_test.ts"],
  },
  {
    name: "erf-mass",
    bug: "the effective receptive field stops at the first ring instead of the asked mass",
    file: "plugins/design/effective_rf.ts",
    find: "if (acc >= mass * total - 1e-9 * total) {",
    replace: "if (acc >= 0.5 * mass * total) {",
    tests: ["tests/design_test.ts"],
    filter: "effective",
  },
  {
    name: "flip-offset",
    bug: "the horizontal flip maps column x to w - x instead of w - 1 - x (one pixel off)",
    file: "plugins/train/augment/flip.ts",
    find: 'axis === "horizontal" ? [-1, 0, w - 1, 0, 1, 0]',
    replace: 'axis === "horizontal" ? [-1, 0, w, 0, 1, 0]',
    tests: ["tests/augment_transforms_test.ts", "tests/augment_pipeline_test.ts"],
  },
  {
    name: "pointing-brightest",
    bug: "the pointing game points at the brightest input pixel instead of the map's maximum",
    file: "plugins/attribute/eval/pointing_game.ts",
    find: "const best = tf.tidy(() => attributionMap(a).reshape([count, -1]).argMax(1));",
    replace:
      "const best = tf.tidy(() => images.pixels.slice([start, 0, 0, 0], [count, -1, -1, -1]).sum(3).reshape([count, -1]).argMax(1));",
    tests: ["tests/attribute_checks_test.ts"],
    filter: "pointing",
  },
];

async function sh(cmd: string[], cwd: string): Promise<{ code: number; out: string }> {
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { OMP_WAIT_POLICY: "passive", NO_COLOR: "1" },
  });
  const r = await p.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** A scratch copy of the tracked tree (node_modules linked, not copied). */
async function scratchCopy(root: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens-mutant-" });
  const { out } = await sh(["git", "ls-files", "-z"], root);
  for (const f of out.split("\0").filter(Boolean)) {
    const to = `${dir}/${f}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${root}/${f}`, to);
  }
  await Deno.symlink(`${root}/node_modules`, `${dir}/node_modules`);
  return dir;
}

function testArgs(m: Mutant): string[] {
  return ["deno", "test", "-A", ...(m.filter ? ["--filter", m.filter] : []), ...m.tests];
}

async function main(): Promise<void> {
  const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true });
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const chosen = positionals.length ? MUTANTS.filter((m) => positionals.includes(m.name)) : MUTANTS;
  if (positionals.length && chosen.length !== positionals.length) {
    const known = MUTANTS.map((m) => m.name).join(", ");
    throw new RangeError(`Unknown mutant among ${positionals.join(", ")}; known: ${known}`);
  }
  const rows: string[] = [];
  const clean = new Map<string, boolean>();
  let caught = 0;
  for (const m of chosen) {
    const dir = await scratchCopy(root);
    try {
      const key = testArgs(m).join(" ");
      if (!clean.has(key)) {
        const base = await sh(testArgs(m), dir);
        clean.set(key, base.code === 0);
        if (base.code !== 0) {
          console.error(`unmutated run of ${key} fails:\n${base.out.slice(-2000)}`);
        }
      }
      const path = `${dir}/${m.file}`;
      const text = await Deno.readTextFile(path);
      if (!text.includes(m.find)) {
        rows.push(`| ${m.name} | ${m.bug} | stale: its text is no longer in ${m.file} |`);
        continue;
      }
      await Deno.writeTextFile(path, text.split(m.find).join(m.replace));
      const t0 = performance.now();
      const run = await sh(testArgs(m), dir);
      const secs = ((performance.now() - t0) / 1000).toFixed(0);
      const verdict = !clean.get(key)
        ? "unknown: the tests fail unmutated"
        : run.code !== 0
        ? `caught (${secs} s)`
        : `NOT caught (${secs} s)`;
      if (clean.get(key) && run.code !== 0) caught++;
      rows.push(`| ${m.name} | ${m.bug} | ${verdict} |`);
      console.error(`${m.name}: ${verdict}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const table = [
    `Mutants caught: ${caught} of ${chosen.length}`,
    "",
    "| mutant | bug | verdict |",
    "|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  await Deno.mkdir(`${root}/out`, { recursive: true });
  await Deno.writeTextFile(`${root}/out/mutants.md`, table + "\n");
  if (caught !== chosen.length) Deno.exit(1);
}

if (import.meta.main) await main();
