/**
 * `summary` (design): per-layer output shape, parameters, multiply-adds and
 * receptive field (size, jump, start) of any model, with totals: the numbers the
 * lecture uses to compare stacks of 3x3 convs with larger filters.
 *
 * @module
 */
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import type { LayerInfo, Net } from "../../core/net.ts";
import { receptiveFields } from "../../core/receptive_field.ts";
import { Result } from "../../core/result.ts";

/** The parameters of the `summary` plugin: none (it reads the model alone). */
export const SUMMARY_PARAMS: Record<string, never> = {};

/** The `summary` plugin's parameter values, typed from {@linkcode SUMMARY_PARAMS} (defaults there). */
export type SummaryOptions = ParamValues<typeof SUMMARY_PARAMS>;

/**
 * Multiply-adds of one forward pass of one image through a layer.
 *
 * @param layer The layer.
 * @param inputShape Its input's shape without the batch dimension.
 * @returns The number of multiply-adds (0 for layers without weights).
 */
export function layerMultiplyAdds(layer: LayerInfo, inputShape: readonly number[]): number {
  const out = layer.outputShape;
  const cin = inputShape.at(-1) ?? 0;
  const [kh, kw] = layer.kernel ?? [1, 1];
  if (layer.role === "conv" && out.length === 3) {
    if (layer.type === "SeparableConv2D") {
      // Depthwise (multiplier from the parameter count is not needed: depth 1
      // is the common case) then 1x1 pointwise.
      return out[0] * out[1] * (cin * kh * kw + cin * out[2]);
    }
    return out[0] * out[1] * out[2] * kh * kw * cin;
  }
  if (layer.role === "depthwise" && out.length === 3) return out[0] * out[1] * out[2] * kh * kw;
  if (layer.role === "dense") return cin * (out.at(-1) ?? 0);
  return 0;
}

/** Totals of a model: parameters and multiply-adds. */
export interface ModelCounts {
  /** Weights in all layers. */
  params: number;
  /** Multiply-adds of one forward pass of one image. */
  multiplyAdds: number;
}

/**
 * Parameters and multiply-adds of a whole model.
 * @param net The model.
 * @returns The totals.
 */
export function modelCounts(net: Net): ModelCounts {
  const byName = new Map(net.layers.map((l) => [l.name, l]));
  let params = 0, multiplyAdds = 0;
  for (const l of net.layers) {
    params += l.params;
    const src = byName.get(l.inputs[0] ?? "");
    multiplyAdds += layerMultiplyAdds(l, src?.outputShape ?? []);
  }
  return { params, multiplyAdds };
}

function fmtPair(p?: [number, number]): string {
  return p ? (p[0] === p[1] ? String(p[0]) : `${p[0]}x${p[1]}`) : "";
}

/** The `summary` plugin. */
export const summary: Plugin<typeof SUMMARY_PARAMS> = definePlugin({
  name: "summary",
  family: "design",
  summary: "Per-layer output shape, parameters, multiply-adds and receptive field, with totals",
  params: SUMMARY_PARAMS,
  resultShape: () => ({}),
  run(ctx) {
    const net = ctx.net;
    const rfs = receptiveFields(net);
    const byName = new Map(net.layers.map((l) => [l.name, l]));
    const rows: (string | number)[][] = [];
    let macs = 0, params = 0;
    for (const l of net.layers) {
      const src = byName.get(l.inputs[0] ?? "");
      const m = layerMultiplyAdds(l, src?.outputShape ?? []);
      macs += m;
      params += l.params;
      const rf = rfs.get(l.name)!;
      rows.push([
        l.name,
        l.type,
        `[${l.outputShape.join(", ")}]`,
        l.kernel ? fmtPair(l.kernel) : "",
        l.stride ? fmtPair(l.stride) : "",
        l.padding ?? "",
        l.dilation ? fmtPair(l.dilation) : "",
        l.params,
        m,
        rf.global ? "whole image" : fmtPair(rf.size),
        rf.global ? "" : fmtPair(rf.jump),
        rf.global ? "" : `${rf.start[0]},${rf.start[1]}`,
      ]);
    }
    const r = new Result("summary", `Model summary: ${net.sidecar.name ?? net.source}`);
    r.figure("layers", net.layers.length - 1)
      .figure("params", params)
      .figure("multiplyAdds", macs)
      .figure("input", `${net.input.height}x${net.input.width}x${net.input.channels}`)
      .figure("classes", net.numClasses)
      .figure("kind", net.kind);
    r.table(
      "Layers (multiply-adds per image; receptive field size, jump and start in input pixels)",
      [
        "layer",
        "type",
        "output",
        "kernel",
        "stride",
        "padding",
        "dilation",
        "params",
        "mult-adds",
        "RF size",
        "RF jump",
        "RF start",
      ],
      rows,
    );
    return Promise.resolve(r);
  },
});
