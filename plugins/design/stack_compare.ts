/**
 * `stack-compare` (design): the lecture's "power of small filters" table for a
 * given H, W, C, **computed from built layers**: each block is built with the
 * builders of `conv_stacks.ts`, wrapped as a model, and its weights, multiply-adds,
 * receptive field and nonlinearities are read off the built model by the same
 * code that `summary` uses on any model. The lecture's formulas (49C^2 against
 * 27C^2, 49HWC^2 against 27HWC^2, RF 7 against 7, 1 against 3 nonlinearities;
 * 9C^2 against 3.25C^2 for the bottleneck, 9C^2 against 6C^2 for 1x3 + 3x1)
 * stand beside the measured values as a check.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { definePlugin, type Plugin } from "../../core/plugin.ts";
import { Net } from "../../core/net.ts";
import { receptiveFields } from "../../core/receptive_field.ts";
import { Result } from "../../core/result.ts";
import { linePlot } from "../../core/plots/plot.ts";
import { modelCosts } from "./costs.ts";
import { bottleneck, factorized, largeConv, stacked3x3 } from "./conv_stacks.ts";

/** The parameters of the `stack-compare` plugin. */
export const STACK_COMPARE_PARAMS = {
  channels: { type: "integer", default: 64, min: 1, max: 4096, help: "channels C in and out" },
  height: { type: "integer", default: 56, min: 1, max: 4096, help: "activation height H" },
  width: { type: "integer", default: 56, min: 1, max: 4096, help: "activation width W" },
  stack: {
    type: "integer",
    default: 3,
    min: 1,
    max: 16,
    help: "n stacked 3x3 convs, against one (2n+1)x(2n+1) conv",
  },
} as const;

/** The `stack-compare` plugin's parameter values, typed from {@linkcode STACK_COMPARE_PARAMS}. */
export type StackCompareOptions = ParamValues<typeof STACK_COMPARE_PARAMS>;

/** One block's figures, read off the built layers. */
export interface BlockFigures {
  /** The block, e.g. `7x7 conv`. */
  block: string;
  /** Kernel weights (no biases), the lecture's count. */
  weights: number;
  /** All parameters, biases included. */
  params: number;
  /** Multiply-adds over an H x W x C input. */
  multiplyAdds: number;
  /** Receptive field of the block's output units (input pixels). */
  receptiveField: number;
  /** Nonlinearities a signal passes. */
  nonlinearities: number;
}

/**
 * Builds a block on an H x W x C input and reads its figures off the built model.
 *
 * @param block Its name.
 * @param layers Its layers (from the builders).
 * @param shape `[H, W, C]`.
 * @returns The figures.
 */
export function measureBlock(
  block: string,
  layers: tf.layers.Layer[],
  shape: readonly [number, number, number],
): BlockFigures {
  const model = tf.sequential({
    layers: [tf.layers.inputLayer({ inputShape: [...shape] }), ...layers],
  });
  try {
    const net = Net.fromModel(model, { name: block });
    const costs = modelCosts(net);
    const last = net.layers[net.layers.length - 1].name;
    const rf = receptiveFields(net).get(last)!;
    const weights = model.layers.reduce((s, l) => s + (l.getWeights()[0]?.size ?? 0), 0);
    const nonlinearities = net.layers.filter((l) =>
      l.activation && l.activation !== "linear"
    ).length;
    return {
      block,
      weights,
      params: costs.params,
      multiplyAdds: costs.multiplyAdds,
      receptiveField: Math.max(...rf.size),
      nonlinearities,
    };
  } finally {
    model.dispose();
  }
}

/** The `stack-compare` plugin. */
export const stackCompare: Plugin<typeof STACK_COMPARE_PARAMS> = definePlugin({
  name: "stack-compare",
  family: "design",
  summary:
    "The power of small filters: weights, multiply-adds and receptive fields of built conv stacks",
  params: STACK_COMPARE_PARAMS,
  needsImages: false,
  resultShape: () => ({}),
  run(_ctx, p) {
    const { channels: c, height: h, width: w, stack: n } = p;
    const shape = [h, w, c] as const;
    const k = 2 * n + 1;
    const half = Math.max(1, Math.floor(c / 2));
    const o = { filters: c, seed: 1 };
    const rows: [BlockFigures, string, number][] = [
      [measureBlock(`${k}x${k} conv`, largeConv(k, o), shape), `${k * k}C^2`, k * k * c * c],
      [
        measureBlock(`${n} x 3x3 convs`, stacked3x3(n, o), shape),
        `${n} x 9C^2 = ${9 * n}C^2`,
        9 * n * c * c,
      ],
      [
        measureBlock(`1x${k} + ${k}x1`, factorized(k, o), shape),
        `2 x ${k}C^2 = ${2 * k}C^2`,
        2 * k * c * c,
      ],
      [measureBlock("3x3 conv", largeConv(3, o), shape), "9C^2", 9 * c * c],
      [
        measureBlock(`bottleneck 1x1 (${half}), 3x3 (${half}), 1x1 (${c})`, bottleneck(o), shape),
        c % 2 === 0 ? "C^2/2 + 9C^2/4 + C^2/2 = 3.25C^2" : "C x C' + 9C'^2 + C' x C",
        c * half + 9 * half * half + half * c,
      ],
      [measureBlock("1x3 + 3x1", factorized(3, o), shape), "2 x 3C^2 = 6C^2", 6 * c * c],
    ];
    const [large, stackRow, , three, bottle, fact3] = rows.map((r) => r[0]);
    const r = new Result("stack-compare", `The power of small filters (H=${h}, W=${w}, C=${c})`);
    r.figure(`weights${k}x${k}`, large.weights)
      .figure("weights3x3Stack", stackRow.weights)
      .figure(`macs${k}x${k}`, large.multiplyAdds)
      .figure("macs3x3Stack", stackRow.multiplyAdds)
      .figure(`rf${k}x${k}`, large.receptiveField)
      .figure("rf3x3Stack", stackRow.receptiveField)
      .figure(`nonlinearities${k}x${k}`, large.nonlinearities)
      .figure("nonlinearities3x3Stack", stackRow.nonlinearities)
      .figure("weights3x3", three.weights)
      .figure("weightsBottleneck", bottle.weights)
      .figure("macsBottleneck", bottle.multiplyAdds)
      .figure("weightsFactorized", fact3.weights)
      .figure("macsFactorized", fact3.multiplyAdds);
    r.table(
      "Blocks from HxWxC to HxWxC, measured on the built layers; the lecture's formula beside " +
        "(weights without biases; multiply-adds = H x W x weights for stride-1 same-padded convs)",
      [
        "block",
        "weights",
        "lecture's formula",
        "formula value",
        "params (with biases)",
        "multiply-adds",
        "receptive field",
        "nonlinearities",
      ],
      rows.map(([b, formula, value]) => [
        b.block,
        b.weights,
        formula,
        value,
        b.params,
        b.multiplyAdds,
        `${b.receptiveField}x${b.receptiveField}`,
        b.nonlinearities,
      ]),
    );
    const mismatched = rows.filter(([b, , v]) => b.weights !== v).map(([b]) => b.block);
    if (mismatched.length) {
      r.note(`Built weights differ from the formula: ${mismatched.join(", ")}`);
    }
    r.addPlot(
      "stack_costs",
      linePlot([
        {
          name: "weights (C^2)",
          x: rows.map(([b]) => b.block),
          y: rows.map(([b]) => b.weights / (c * c)),
          mark: "bar",
        },
      ], { xLabel: "block", yLabel: "weights / C^2", title: "Weights per block, in units of C^2" }),
      "Weights of each block in units of C^2 (multiply-adds are H x W times these)",
    );
    return Promise.resolve(r);
  },
});
