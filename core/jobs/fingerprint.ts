/**
 * The fingerprint of a model: a SHA-256 of its layers (names, kinds, output
 * shapes), its input contract and the bytes of all its weights, so that a
 * merge can refuse state files computed with another model, even one of the
 * same architecture with other weights.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { tf } from "../tf.ts";
import type { Net } from "../net.ts";

/**
 * The model's fingerprint.
 *
 * @param net The model.
 * @returns `sha256:<hex>`.
 */
export function modelFingerprint(net: Net): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({
    kind: net.kind,
    input: net.input,
    layers: net.layers.map((l) => [l.name, l.type, l.inputs, l.outputShape]),
  }));
  const model = net.model as unknown as {
    weights:
      | { name: string; originalName?: string; read(): tf.Tensor }[]
      | Record<string, tf.Tensor[]>;
  };
  // A LayersModel's variables in their order, by the names the model gives
  // them (tfjs suffixes `name` when a process loads the model twice); a
  // GraphModel's weights by name.
  const tensors: [string, tf.Tensor][] = Array.isArray(model.weights)
    ? model.weights.map((w) => [w.originalName ?? w.name, w.read()])
    : Object.entries(model.weights).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([name, ts]) => ts.map((t): [string, tf.Tensor] => [name, t]));
  for (const [name, t] of tensors) {
    hash.update(`${name}:${t.dtype}:${t.shape.join("x")};`);
    const v = t.dataSync();
    hash.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return `sha256:${hash.digest("hex")}`;
}
