import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import {
  batchSizeForLayers,
  isOutOfMemory,
  memoryBudgetMB,
  OutOfMemoryError,
} from "../core/memory_budget.ts";
import { definePlugin } from "../core/plugin.ts";
import { Result } from "../core/result.ts";
import { runPlugin } from "../core/runner.ts";
import { Net } from "../core/net.ts";
import { initBackend } from "../backends/mod.ts";

await initBackend("cpu", { quiet: true });

Deno.test("batchSizeForLayers() divides the budget by the layers' bytes per image", () => {
  // 32x32x8 + 16x16x16 + 10 = 8192 + 4096 + 10 = 12298 elements; x 4 bytes x 3 = 147576
  const shapes = [[32, 32, 8], [16, 16, 16], [10]];
  assert.equal(batchSizeForLayers(shapes, 1000, { memoryMB: 1 }), Math.floor(1048576 / 147576));
  // A forward pass holds half as much: x 1.5 = 73788 bytes
  assert.equal(
    batchSizeForLayers(shapes, 1000, { memoryMB: 1, pass: "forward" }),
    Math.floor(1048576 / 73788),
  );
  // Extra input copies add 8192 x 4 bytes each
  assert.equal(
    batchSizeForLayers(shapes, 1000, { memoryMB: 1, extraInputs: 2 }),
    Math.floor(1048576 / (147576 + 65536)),
  );
});

Deno.test("batchSizeForLayers() stays within 1 and the plugin's cap", () => {
  assert.equal(batchSizeForLayers([[224, 224, 64]], 64, { memoryMB: 1 }), 1);
  assert.equal(batchSizeForLayers([[4]], 16, { memoryMB: 512 }), 16);
});

Deno.test("memoryBudgetMB() takes a given budget and rejects a bad one", () => {
  assert.equal(memoryBudgetMB(64), 64);
  let err: unknown;
  try {
    memoryBudgetMB(-1);
  } catch (e) {
    err = e;
  }
  assert.match(String(err), /positive number of megabytes/);
});

Deno.test("isOutOfMemory() knows the engine's out-of-memory errors", () => {
  for (
    const m of [
      "Aborted(). Build with -sASSERTIONS for more info.",
      "RuntimeError: memory access out of bounds",
      "Out of memory",
      "RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded",
    ]
  ) assert.equal(isOutOfMemory(new Error(m)), true, m);
  assert.equal(isOutOfMemory(new Error("Unknown layer")), false);
});

Deno.test("runPlugin() turns running out of memory into an error naming batchSize, leaving no tensors", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 4, name: "c" }),
      tf.layers.flatten({ name: "f" }),
    ],
  });
  const net = Net.fromModel(model);
  const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  const greedy = definePlugin({
    name: "greedy",
    family: "attribute",
    summary: "Allocates, then runs out of memory",
    params: { batchSize: { type: "integer", min: 1, help: "images per pass" } },
    run(_ctx, _p) {
      tf.ones([100]);
      try {
        // exp keeps its output for the backward pass that never comes
        tf.grad((v: tf.Tensor) => {
          tf.exp(v);
          throw new Error("Out of memory");
        })(tf.ones([3]));
      } catch {
        // on to the next way of running out
      }
      tf.tidy(() => {
        tf.ones([10]);
        throw new WebAssembly.RuntimeError("memory access out of bounds");
      });
      return Promise.resolve(new Result("greedy", "Greedy"));
    },
  });
  const before = tf.memory().numTensors;
  let err: unknown;
  try {
    await runPlugin(net, { pixels: x, x, labels: [-1], names: ["a"] }, greedy);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OutOfMemoryError, String(err));
  assert.match(err.message, /greedy ran out of memory/);
  assert.match(err.message, /--batchSize/);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  net.dispose();
});

Deno.test("runPlugin() names the batch parameters of the plugin that ran out of memory inside another", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 4, name: "c" }),
      tf.layers.flatten({ name: "f" }),
    ],
  });
  const net = Net.fromModel(model);
  const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  const inner = definePlugin({
    name: "inner",
    family: "attribute",
    summary: "Runs out of memory",
    params: {},
    run() {
      tf.ones([10]);
      throw new Error("Aborted(). Build with -sASSERTIONS for more info.");
    },
  });
  const outer = definePlugin({
    name: "outer",
    family: "attribute",
    summary: "Calls inner in batches",
    params: { batchSize: { type: "integer", min: 1, help: "samples per call" } },
    async run(ctx) {
      tf.ones([10]);
      return await ctx.run(inner);
    },
  });
  const before = tf.memory().numTensors;
  let err: unknown;
  try {
    await runPlugin(net, { pixels: x, x, labels: [-1], names: ["a"] }, outer);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OutOfMemoryError, String(err));
  assert.match(err.message, /^outer ran out of memory \(Aborted\(\)/);
  assert.match(err.message, /--batchSize/);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  net.dispose();
});
