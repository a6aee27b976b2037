/**
 * Every kernel that any built-in plugin runs is registered on every backend
 * `auto` can pick (WebGPU, WASM, CPU). The kernels are collected by profiling each
 * plugin (with the light parameters of the conformance suite) on WASM.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { QUICK } from "./_quick.ts";
import { RELU_GRAD_KERNEL } from "../backends/native_kernels.ts";
import { CLIP_GRAD_KERNEL } from "../backends/elementwise_grads.ts";
import { SAMPLE_GRID_KERNEL, WARP_AFFINE_KERNEL } from "../core/images/warp_kernel.ts";

Deno.test("every kernel the plugins use is registered on webgpu, wasm and cpu", async () => {
  const lens = await Lens.open({ backend: "wasm", quiet: true, count: 1 });
  const used = new Map<string, Set<string>>();
  try {
    for (const plugin of builtinPlugins) {
      const info = await tf.profile(async () => {
        const r = await lens.run(plugin, QUICK[plugin.name] ?? {});
        r.dispose();
      });
      // `name__op` entries are custom-gradient wrappers; their kernels are listed too.
      for (const k of info.kernelNames.filter((n) => !n.endsWith("__op"))) {
        if (!used.has(k)) used.set(k, new Set());
        used.get(k)!.add(plugin.name);
      }
    }
  } finally {
    lens.dispose();
  }
  // Gradients show up as their own kernels (Conv2DBackpropFilter and such).
  assert.ok(used.has("Conv2D") && used.has("Conv2DBackpropInput"), [...used.keys()].join(" "));
  const missing: string[] = [];
  for (const [kernel, plugins] of used) {
    // The ReLU and clip gradients are routed to these kernels on wasm only; the
    // other backends keep the stock gradients (Step, comparisons, Select and
    // Multiply, which all of them have).
    const wasmOnly = kernel === RELU_GRAD_KERNEL || kernel === CLIP_GRAD_KERNEL;
    // The warp kernels are asked for where registered; elsewhere (WebGPU) the
    // warp is composed from stock ops (tests/warp_kernels_test.ts, and the
    // WebGPU plugin tests run the augmentation plugins there).
    const warp = kernel === WARP_AFFINE_KERNEL || kernel === SAMPLE_GRID_KERNEL;
    const backends = wasmOnly ? ["wasm"] : warp ? ["wasm", "cpu"] : ["webgpu", "wasm", "cpu"];
    for (const backend of backends) {
      if (!tf.getKernel(kernel, backend)) {
        missing.push(`${kernel} on ${backend} (used by ${[...plugins].join(", ")})`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
