/**
 * Peak memory of the batched plugins' defaults on a 224x224 ResNet-50 (random
 * weights, built with tfjs layers), on the WASM backend. Each plugin runs in a
 * process of its own, so that the kernel's high-water mark (VmHWM) is that
 * plugin's peak resident memory.
 *
 *   deno run -A bench/memory_resnet50.ts                 smoothgrad, integrated-gradients, occlusion
 *   deno run -A bench/memory_resnet50.ts smoothgrad      one plugin
 *   CONVLENS_MEMORY_MB=256 deno run -A bench/memory_resnet50.ts
 *
 * Occlusion's default 8x8 square at stride 2 means 11,881 forward passes of
 * ResNet-50 at 224x224 (hours on two cores); it runs with a 32x32 square at
 * stride 32 (49 passes) and its default batch size, which is what memory depends on.
 * Too slow for the test suite: run it by hand, the figures go to RESULTS.md.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { Net } from "../core/net.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import { runPlugin } from "../core/runner.ts";
import { Registry } from "../core/plugin.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { batchSizeFor, memoryBudgetMB, PASS_FACTOR } from "../core/memory_budget.ts";
import { resnet50 } from "../plugins/design/architectures.ts";
import { writePng } from "../core/images/codecs.ts";

const PLUGINS: Record<string, Record<string, unknown>> = {
  "smoothgrad": {},
  "integrated-gradients": {},
  "occlusion": { size: 32, stride: 32 },
  // Memory follows the batch size, not how many images: few images, default batches.
  "top-patches": { count: 12 },
  "deletion": { count: 2, steps: 2 },
  "adversarial": {},
  "fooling-images": { classes: [0], steps: 2, generations: 2 },
};

/** Plugins that read a data set get a folder of 224x224 images in two classes. */
const NEEDS_DATA = new Set(["top-patches", "deletion"]);

async function dataFolder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens-r50-data-" });
  for (const c of ["a", "b"]) {
    await Deno.mkdir(`${dir}/${c}`);
    for (let i = 0; i < 6; i++) {
      const t = tf.randomUniform([224, 224, 3], 0, 1, "float32", i + (c === "a" ? 0 : 9));
      await writePng(`${dir}/${c}/${i}.png`, t as tf.Tensor3D);
      t.dispose();
    }
  }
  return dir;
}

function peakRssMB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function runOne(name: string): Promise<void> {
  await initBackend(Deno.env.get("CONVLENS_BACKEND") ?? "wasm", { quiet: true });
  const net = Net.fromModel(resnet50({ top: true }));
  const pixels = tf.randomUniform([1, 224, 224, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const images = imagesFromPixels(net, pixels);
  const pass = name === "occlusion" ? "forward" : "gradient";
  const batch = batchSizeFor(net, 64, { pass });
  const t0 = performance.now();
  let status = "ok";
  const data = NEEDS_DATA.has(name) ? await dataFolder() : undefined;
  try {
    const r = await runPlugin(net, images, name, PLUGINS[name], {
      registry: new Registry(builtinPlugins),
      data,
    });
    r.dispose();
  } catch (err) {
    status = (err as Error).message.split("\n")[0];
  } finally {
    if (data) await Deno.remove(data, { recursive: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ name, batch, seconds, peakRssMB: peakRssMB(), status }));
}

if (import.meta.main) {
  const only = Deno.args[0];
  if (only) {
    await runOne(only);
  } else {
    await initBackend("cpu", { quiet: true });
    const model = resnet50({ top: true });
    const elements = model.layers.reduce(
      (s, l) => s + (l.outputShape as number[]).slice(1).reduce((p, d) => p * (d ?? 1), 1),
      0,
    );
    model.dispose();
    console.log(
      `ResNet-50 224x224: ${(elements / 1e6).toFixed(1)} M activation elements per image ` +
        `(${(elements * 4 * PASS_FACTOR.gradient / 2 ** 20).toFixed(0)} MB in a gradient pass); ` +
        `budget ${memoryBudgetMB()} MB`,
    );
    console.log("| plugin | batch | time (s) | peak RSS (MB) | status |");
    console.log("|---|---|---|---|---|");
    for (const name of Object.keys(PLUGINS)) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(import.meta.url).pathname, name],
        stderr: "inherit",
      }).output();
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
      try {
        const r = JSON.parse(line);
        console.log(
          `| ${r.name} | ${r.batch} | ${r.seconds.toFixed(1)} | ${
            r.peakRssMB.toFixed(0)
          } | ${r.status} |`,
        );
      } catch {
        console.log(`| ${name} | | | | exit ${out.code}: ${line.slice(0, 200)} |`);
      }
    }
  }
}
