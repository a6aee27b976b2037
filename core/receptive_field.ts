/**
 * Receptive fields: for every layer, the size of the input window one unit sees,
 * the jump (distance in input pixels between neighbouring units) and the start
 * (input coordinate of the centre of the first unit's window), per axis, through
 * any branch structure. Where branches merge the larger field is taken.
 *
 * With `k' = d (k - 1) + 1` the effective kernel of a layer with kernel k, stride s,
 * dilation d and left padding p, after a layer with (size r, jump j, start c):
 * `r' = r + (k' - 1) j`, `j' = j s`, `c' = c + ((k' - 1) / 2 - p) j`.
 *
 * @module
 */
import type { LayerInfo, Net } from "./net.ts";
import type { Box } from "./images/grids.ts";

/** Receptive field of one layer's units, per axis `[height, width]`. */
export interface ReceptiveField {
  /** Window size in input pixels. */
  size: [number, number];
  /** Distance in input pixels between neighbouring units. */
  jump: [number, number];
  /** Input coordinate (pixel centres at 0, 1, ...) of the first unit's window centre. */
  start: [number, number];
  /** The unit sees the whole input (dense layers and global pooling). */
  global: boolean;
}

function leftPad(
  padding: LayerInfo["padding"],
  inSize: number,
  k: number,
  s: number,
  explicit?: number,
): number {
  if (padding === "same") {
    const out = Math.ceil(inSize / s);
    const total = Math.max((out - 1) * s + k - inSize, 0);
    return Math.floor(total / 2);
  }
  if (padding === "explicit") return explicit ?? 0;
  return 0;
}

/**
 * Receptive fields of every layer of a Net, by layer name.
 *
 * @param net The model.
 * @returns A map from layer name to its receptive field.
 * @example Two stacked 3x3 convs see 5x5
 * ```ts
 * import { tf } from "./tf.ts";
 * import { Net } from "./net.ts";
 * import { receptiveFields } from "./receptive_field.ts";
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [9, 9, 1], filters: 1, kernelSize: 3, name: "a" }),
 *   tf.layers.conv2d({ filters: 1, kernelSize: 3, name: "b" }),
 * ] });
 * const rf = receptiveFields(Net.fromModel(model)).get("b")!;
 * if (rf.size[0] !== 5) throw new Error(String(rf.size));
 * ```
 */
export function receptiveFields(net: Net): Map<string, ReceptiveField> {
  const out = new Map<string, ReceptiveField>();
  const { height, width } = net.input;
  const inputSize = [height, width];
  const whole = (): ReceptiveField => ({
    size: [height, width],
    jump: [height, width],
    start: [(height - 1) / 2, (width - 1) / 2],
    global: true,
  });
  const byName = new Map(net.layers.map((l) => [l.name, l]));
  for (const layer of net.layers) {
    if (layer.role === "input") {
      out.set(layer.name, { size: [1, 1], jump: [1, 1], start: [0, 0], global: false });
      continue;
    }
    const ins = layer.inputs.map((n) => out.get(n)).filter((r): r is ReceptiveField => !!r);
    if (ins.length === 0) {
      out.set(layer.name, whole());
      continue;
    }
    if (
      ins.some((r) => r.global) || layer.role === "dense" || layer.role === "global" ||
      layer.role === "flatten"
    ) {
      out.set(layer.name, whole());
      continue;
    }
    // A merge takes the larger field of its branches.
    let prev = ins[0];
    for (const r of ins) if (r.size[0] * r.size[1] > prev.size[0] * prev.size[1]) prev = r;
    if (layer.role !== "conv" && layer.role !== "depthwise" && layer.role !== "pool") {
      out.set(layer.name, {
        ...prev,
        size: [...prev.size],
        jump: [...prev.jump],
        start: [...prev.start],
      });
      continue;
    }
    const src = byName.get(layer.inputs[0]);
    const inShape = src?.outputShape ?? [];
    const rf: ReceptiveField = { size: [0, 0], jump: [0, 0], start: [0, 0], global: false };
    for (const a of [0, 1] as const) {
      const k = layer.kernel?.[a] ?? 1;
      const s = layer.stride?.[a] ?? 1;
      const d = layer.dilation?.[a] ?? 1;
      const keff = d * (k - 1) + 1;
      const inSize = inShape[a] ?? inputSize[a] / prev.jump[a];
      const explicit = layer.explicitPadding?.[a === 0 ? 0 : 2];
      const p = leftPad(layer.padding, inSize, keff, s, explicit);
      rf.size[a] = prev.size[a] + (keff - 1) * prev.jump[a];
      rf.jump[a] = prev.jump[a] * s;
      rf.start[a] = prev.start[a] + ((keff - 1) / 2 - p) * prev.jump[a];
    }
    out.set(layer.name, rf);
  }
  return out;
}

/**
 * The input window of one unit, clipped to the image.
 *
 * @param rf The layer's receptive field.
 * @param row The unit's row in the layer's grid.
 * @param col The unit's column.
 * @param height Input height, for clipping.
 * @param width Input width, for clipping.
 * @returns The window.
 */
export function unitWindow(
  rf: ReceptiveField,
  row: number,
  col: number,
  height: number,
  width: number,
): Box {
  if (rf.global) return { y0: 0, x0: 0, y1: height, x1: width };
  const cy = rf.start[0] + row * rf.jump[0];
  const cx = rf.start[1] + col * rf.jump[1];
  const y0 = Math.round(cy - (rf.size[0] - 1) / 2);
  const x0 = Math.round(cx - (rf.size[1] - 1) / 2);
  return {
    y0: Math.max(0, y0),
    x0: Math.max(0, x0),
    y1: Math.min(height, y0 + rf.size[0]),
    x1: Math.min(width, x0 + rf.size[1]),
  };
}
