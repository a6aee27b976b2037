import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net } from "../core/net.ts";
import { receptiveFields, unitWindow } from "../core/receptive_field.ts";
import { functionalNet } from "./_nets.ts";

await tf.setBackend("cpu");

function stack(specs: Record<string, unknown>[], input = [32, 32, 1]): Net {
  const layers = specs.map((s, i) => {
    const { kind, ...cfg } = s;
    const base = { name: `l${i}`, ...(i === 0 ? { inputShape: input } : {}) };
    return kind === "pool"
      ? tf.layers.maxPooling2d({ ...base, ...cfg } as Parameters<typeof tf.layers.maxPooling2d>[0])
      : tf.layers.conv2d({ filters: 1, ...base, ...cfg } as Parameters<typeof tf.layers.conv2d>[0]);
  });
  return Net.fromModel(tf.sequential({ layers }));
}

Deno.test("receptiveFields() gives 5x5 for two stacked 3x3 convs and 7x7 for three", () => {
  const net = stack([{ kernelSize: 3 }, { kernelSize: 3 }, { kernelSize: 3 }]);
  const rf = receptiveFields(net);
  assert.deepEqual(rf.get("l0")!.size, [3, 3]);
  assert.deepEqual(rf.get("l1")!.size, [5, 5]);
  assert.deepEqual(rf.get("l2")!.size, [7, 7]);
  // Valid padding: the first unit's window starts at pixel 0, so its centre is 1, 2, 3.
  assert.deepEqual(rf.get("l2")!.start, [3, 3]);
  assert.deepEqual(rf.get("l2")!.jump, [1, 1]);
  net.dispose();
});

Deno.test("receptiveFields() multiplies the jump by strides and pools", () => {
  const net = stack([
    { kernelSize: 3, strides: 2, padding: "same" },
    { kind: "pool", poolSize: 2 },
    { kernelSize: 3, padding: "same" },
  ]);
  const rf = receptiveFields(net);
  assert.deepEqual(rf.get("l0")!.jump, [2, 2]);
  assert.deepEqual(rf.get("l1")!.jump, [4, 4]);
  // 3, then + (2 - 1) * 2 = 5, then + (3 - 1) * 4 = 13.
  assert.deepEqual(rf.get("l1")!.size, [5, 5]);
  assert.deepEqual(rf.get("l2")!.size, [13, 13]);
  // Same padding on 32 with stride 2: total pad 1, left pad 0; start = 1.
  assert.deepEqual(rf.get("l0")!.start, [1, 1]);
  net.dispose();
});

Deno.test("receptiveFields() counts dilation and takes the larger branch at a merge", () => {
  const net = stack([{ kernelSize: 3, dilationRate: 2 }]);
  assert.deepEqual(receptiveFields(net).get("l0")!.size, [5, 5]);
  net.dispose();
  const f = Net.fromModel(functionalNet());
  const rf = receptiveFields(f);
  assert.deepEqual(rf.get("a")!.size, [3, 3]);
  assert.deepEqual(rf.get("b")!.size, [5, 5]);
  assert.deepEqual(rf.get("skip")!.size, [1, 1]);
  assert.deepEqual(rf.get("add")!.size, [5, 5]);
  assert.deepEqual(rf.get("side")!.size, [9, 9]);
  assert.deepEqual(rf.get("cat")!.size, [9, 9]);
  assert.deepEqual(rf.get("pool")!.size, [10, 10]);
  assert.equal(rf.get("gap")!.global, true);
  f.dispose();
});

Deno.test("unitWindow() clips a unit's window to the image", () => {
  const net = stack([{ kernelSize: 3, padding: "same" }, { kernelSize: 3, padding: "same" }]);
  const rf = receptiveFields(net).get("l1")!;
  assert.deepEqual(unitWindow(rf, 0, 0, 32, 32), { y0: 0, x0: 0, y1: 3, x1: 3 });
  assert.deepEqual(unitWindow(rf, 10, 4, 32, 32), { y0: 8, x0: 2, y1: 13, x1: 7 });
  assert.deepEqual(unitWindow(rf, 31, 31, 32, 32), { y0: 29, x0: 29, y1: 32, x1: 32 });
  net.dispose();
});
