/**
 * `deno doc --lint` for convlens's public modules, minus one class of diagnostic:
 * references to TensorFlow.js's own types (`tf.Tensor`, `tf.LayersModel`, ...).
 * Re-exporting those would pull tfjs's thousand undocumented internals into our
 * docs; users reach them through `@convlens/convlens/tf` instead. Every other
 * diagnostic fails the gate.
 *
 * @module
 */
import { tf } from "../core/tf.ts";

/** Type-only names of TensorFlow.js that our signatures use. */
const TFJS_TYPE_NAMES = new Set([
  "Rank",
  "TypedArray",
  "Scalar",
  "Tensor1D",
  "Tensor2D",
  "Tensor3D",
  "Tensor4D",
  "Tensor5D",
  "NamedAttrMap",
  "GradConfig",
  "TensorInfo",
  "DataType",
  "ModelArtifacts",
  "WeightsManifestEntry",
  "NamedTensorMap",
  "TensorContainer",
  // tf.layers.Layer (custom layers extend it), and the Shape and ConfigDict of its methods.
  "Layer",
  "Shape",
  "ConfigDict",
]);

function isTfjsType(name: string): boolean {
  return name in tf || TFJS_TYPE_NAMES.has(name);
}

/**
 * Runs the doc lint on entry points and returns the diagnostics that count.
 * @param entries Module paths.
 * @returns Diagnostic blocks (empty when clean).
 */
export async function docLint(entries: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", ...entries],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const blocks = text.split(/\n(?=error\[)/).filter((b) => b.startsWith("error["));
  return blocks.filter((b) => {
    const m = b.match(/^error\[private-type-ref\]: .* references private type '([^']+)'/);
    return !(m && isTfjsType(m[1]));
  });
}

if (import.meta.main) {
  // Every entry point the package exports (deno.json "exports").
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  const entries = Deno.args.length
    ? Deno.args
    : (Object.values(config.exports) as string[]).filter((e) => !e.endsWith("core/tf.ts"));
  const left = await docLint(entries);
  for (const b of left) console.error(b.trim() + "\n");
  console.error(`doc lint: ${left.length} problem(s) in ${entries.join(", ")}`);
  Deno.exit(left.length ? 1 : 0);
}
