/**
 * `summary` (design): per-layer output shape, parameters, multiply-adds and
 * FLOPs (every layer counted by a stated rule or flagged "not counted"),
 * receptive field (size, jump, start), measured latency, and the effective
 * receptive field measured from input gradients (Luo et al. 2016) beside the
 * theoretical one, with totals: the numbers the lecture uses to compare stacks
 * of 3x3 convs with larger filters. It needs no input images: without any it
 * measures on seeded noise in the model's input range.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../core/plugin.ts";
import { receptiveFields } from "../../core/receptive_field.ts";
import { Result } from "../../core/result.ts";
import { imagesFromPixels } from "../../core/inputs.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { grid } from "../../core/images/grids.ts";
import { modelCosts } from "./costs.ts";
import { layerLatencies } from "./latency.ts";
import { effectiveReceptiveField, type EffectiveRf, spreadLayers } from "./effective_rf.ts";

/** The parameters of the `summary` plugin. */
export const SUMMARY_PARAMS = {
  latency: {
    type: "boolean",
    default: true,
    help: "measure each layer's latency at batch 1 (LayersModels)",
  },
  repeats: {
    type: "integer",
    default: 3,
    min: 1,
    max: 100,
    help: "timed runs per layer (median kept)",
  },
  erf: {
    type: "boolean",
    default: true,
    help: "measure the effective receptive field (Luo et al. 2016) of some layers",
  },
  erfLayers: {
    type: "string",
    default: "",
    help: "comma-separated layers for the effective receptive field (default: 4 spread over depth)",
  },
  erfSamples: {
    type: "integer",
    default: 4,
    min: 1,
    max: 64,
    help: "inputs the effective receptive field averages over (the input images, or noise)",
  },
  mass: {
    type: "number",
    default: 0.95,
    min: 0.5,
    max: 0.999,
    help: "share of the gradient's magnitude the effective receptive field holds",
  },
} as const;

/** The `summary` plugin's parameter values, typed from {@linkcode SUMMARY_PARAMS} (defaults there). */
export type SummaryOptions = ParamValues<typeof SUMMARY_PARAMS>;

function fmtPair(p?: [number, number]): string {
  return p ? (p[0] === p[1] ? String(p[0]) : `${p[0]}x${p[1]}`) : "";
}

/** `n` inputs in model space: the run's images (repeated if fewer), or seeded noise. */
function probeInputs(ctx: Context, n: number): tf.Tensor4D {
  const have = ctx.images.x.shape[0];
  if (have > 0) {
    return tf.tidy(() => {
      const idx = tf.tensor1d(Array.from({ length: n }, (_, i) => i % have), "int32");
      return tf.gather(ctx.images.x, idx) as tf.Tensor4D;
    });
  }
  const { height, width, channels } = ctx.net.input;
  const pixels = tf.randomUniform(
    [n, height, width, channels],
    0,
    1,
    "float32",
    ctx.rng.seedForTf(),
  );
  const images = imagesFromPixels(ctx.net, pixels as tf.Tensor4D);
  images.pixels.dispose();
  return images.x;
}

/** The `summary` plugin. */
export const summary: Plugin<typeof SUMMARY_PARAMS> = definePlugin({
  name: "summary",
  family: "design",
  summary:
    "Per-layer shape, parameters, multiply-adds, FLOPs, latency, receptive field and effective RF",
  params: SUMMARY_PARAMS,
  needsImages: false,
  resultShape: () => ({}),
  async run(ctx, p) {
    const net = ctx.net;
    const rfs = receptiveFields(net);
    const costs = modelCosts(net);
    const r = new Result("summary", `Model summary: ${net.sidecar.name ?? net.source}`);
    const erfLayers = !p.erf
      ? []
      : p.erfLayers
      ? p.erfLayers.split(",").map((s) => net.layer(s.trim()).name)
      : spreadLayers(net, 4);

    let latency: Awaited<ReturnType<typeof layerLatencies>> | undefined;
    if (p.latency && net.kind === "layers") {
      const x = probeInputs(ctx, 1);
      try {
        latency = await layerLatencies(net, x, { repeats: p.repeats });
      } finally {
        x.dispose();
      }
    } else if (p.latency) {
      r.note("Per-layer latency needs a LayersModel; a GraphModel runs as one graph.");
    }

    const erfs: EffectiveRf[] = [];
    if (erfLayers.length) {
      const x = probeInputs(ctx, p.erfSamples);
      try {
        for (const name of erfLayers) {
          try {
            erfs.push(await effectiveReceptiveField(net, name, x, { mass: p.mass }));
          } catch (err) {
            r.note(`Effective receptive field of ${name}: ${(err as Error).message}`);
          }
          ctx.progress(erfs.length, erfLayers.length);
        }
      } finally {
        x.dispose();
      }
    }
    const erfBy = new Map(erfs.map((e) => [e.layer, e]));

    const rows: (string | number)[][] = net.layers.map((l) => {
      const rf = rfs.get(l.name)!;
      const c = costs.perLayer.get(l.name)!;
      const ms = latency?.perLayer.get(l.name);
      const e = erfBy.get(l.name);
      return [
        l.name,
        l.type,
        `[${l.outputShape.join(", ")}]`,
        l.kernel ? fmtPair(l.kernel) : "",
        l.stride ? fmtPair(l.stride) : "",
        l.padding ?? "",
        l.dilation ? fmtPair(l.dilation) : "",
        l.params,
        c.counted ? c.multiplyAdds : "not counted",
        c.counted ? c.flops : "not counted",
        ms === undefined ? "" : Number(ms.toFixed(3)),
        rf.global ? "whole image" : fmtPair(rf.size),
        rf.global ? "" : fmtPair(rf.jump),
        rf.global ? "" : `${rf.start[0]},${rf.start[1]}`,
        e ? e.size : "",
      ];
    });
    r.figure("layers", net.layers.length - 1)
      .figure("params", costs.params)
      .figure("multiplyAdds", costs.multiplyAdds)
      .figure("flops", costs.flops)
      .figure("notCounted", costs.notCounted.length)
      .figure("input", `${net.input.height}x${net.input.width}x${net.input.channels}`)
      .figure("classes", net.numClasses)
      .figure("kind", net.kind);
    if (latency) {
      const sum = [...latency.perLayer.values()].reduce((a, b) => a + b, 0);
      r.figure("forwardMs", Number(latency.forwardMs.toFixed(3)))
        .figure("layerMsTotal", Number(sum.toFixed(3)));
    }
    if (costs.notCounted.length) {
      r.note(
        `Not counted (no rule knows their cost; the totals leave them out): ${
          costs.notCounted.join(", ")
        }.`,
      );
    }
    r.table(
      "Layers (per image: multiply-adds; FLOPs = 2 per multiply-add + per-element work; " +
        "latency in ms at batch 1; receptive field size, jump and start in input pixels; " +
        `ERF = side of the square holding ${p.mass * 100}% of the input gradient)`,
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
        "FLOPs",
        "ms",
        "RF size",
        "RF jump",
        "RF start",
        "ERF",
      ],
      rows,
    );
    if (erfs.length) {
      r.table(
        `Effective receptive field (Luo et al. 2016): |d centre unit / d input| averaged over ${p.erfSamples} ` +
          (ctx.images.x.shape[0] > 0 ? "input images" : "noise inputs"),
        ["layer", "theoretical RF", "ERF size", "ERF / RF", "RMS spread (px)"],
        erfs.map((e) => [
          e.layer,
          e.theoretical,
          e.size,
          Number((e.size / e.theoretical).toFixed(3)),
          Number(e.spread.toFixed(2)),
        ]),
      );
      for (const e of erfs) r.figure(`erf.${e.layer}`, e.size);
      const maps = tf.tidy(() =>
        // The square root shows the tails, which a linear scale hides under the peak.
        colormap(tf.stack(erfs.map((e) => e.map)).sqrt() as tf.Tensor3D, "inferno", {
          min: 0,
          max: 1,
        })
      );
      const scale = Math.max(1, Math.floor(112 / net.input.height));
      const labels = erfs.map((e) => `${e.layer}: ERF ${e.size} / RF ${e.theoretical}`);
      const figure = grid(maps, { scale, cols: Math.min(4, erfs.length) });
      await r.addImage(
        "effective_rf",
        figure,
        "Effective receptive fields: mean |gradient| of each layer's centre unit over the input (square root, scaled to 1)",
        { tiles: labels, cols: Math.min(4, erfs.length) },
      );
      tf.dispose([maps, figure, ...erfs.map((e) => e.map)]);
    }
    return r;
  },
});
