import assert from "node:assert/strict";
import { runDemo } from "../scripts/demo.ts";
import { checkPage, chromiumPath, type PageCheck } from "./_chromium.ts";
import { tf } from "../core/tf.ts";
import { Result } from "../core/result.ts";
import { writeReport } from "../core/report.ts";
import { colormap } from "../core/images/colormaps.ts";
import { learningCurves } from "../core/plots/learning_curves.ts";
import { linePlot } from "../core/plots/plot.ts";
import { loadNet } from "../core/load.ts";
import { heldOutDigits } from "../core/datasets.ts";
import { disposeImages, imagesFromPixels } from "../core/inputs.ts";
import { initBackend } from "../backends/mod.ts";
import type { AnyPlugin } from "../core/plugin.ts";
import { runPlugin } from "./_run.ts";
import { saliency } from "../plugins/attribute/saliency.ts";
import { gradCam } from "../plugins/attribute/grad_cam.ts";
import { occlusion } from "../plugins/attribute/occlusion.ts";
import { adversarial } from "../plugins/fool/adversarial.ts";
import { filters } from "../plugins/inspect/filters.ts";
import { activations } from "../plugins/inspect/activations.ts";
import { classModel } from "../plugins/optimize/class_model.ts";

/** Screenshots go where a person can find them: out/screenshots/ in the repository. */
const SHOTS = new URL("../out/screenshots", import.meta.url).pathname;

function assertReadable(check: PageCheck): void {
  assert.deepEqual(check.broken, []);
  assert.deepEqual(check.errors, []);
  assert.deepEqual(check.duplicateIds, [], "section and gradient ids must be unique");
  for (const svg of check.svgs) {
    assert.ok(svg.xLabels.length >= 1, `an SVG (${svg.class}) without an x-axis label`);
    if (svg.class === "plot") assert.ok(svg.yLabels.length >= 1, "a plot without a y-axis label");
  }
  for (const [width, px] of Object.entries(check.overflow)) {
    assert.ok(px <= 0, `the page scrolls sideways by ${px}px at ${width}px wide`);
  }
  for (const [width, cut] of Object.entries(check.clipped)) {
    assert.deepEqual(cut, [], `captions cut off at ${width}px wide`);
  }
  for (const f of check.figures.filter((f) => f.colorbarTicks.length || f.colorbarLabel)) {
    assert.ok(f.colorbarTicks.length >= 2, `a colour bar without both ends (${f.caption})`);
    assert.ok(f.colorbarLabel, `a colour bar without a label (${f.caption})`);
    assert.ok(!f.colorbarCut, `a colour bar's text is cut off (${f.colorbarLabel})`);
  }
}

Deno.test({
  name: "the demo report loads in headless Chromium: every image decodes, no errors",
  ignore: !chromiumPath() && !Deno.env.get("CI"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "convlens_report_" });
    const summary = await runDemo({
      out,
      backend: "cpu",
      progress: false,
      only: ["summary", "activations", "filters"],
    });
    assert.deepEqual(summary.failures, []);
    assert.deepEqual(summary.timings.map((t) => t.plugin), ["summary", "activations", "filters"]);
    assert.match(await Deno.readTextFile(summary.report), /Time per plugin/);
    await Deno.mkdir(SHOTS, { recursive: true });
    const check = await checkPage(`file://${summary.report}`, {
      widths: [1400, 420],
      screenshotDir: SHOTS,
      name: "demo",
    });
    console.log(`screenshots: ${check.screenshots.join(", ")}`);
    assert.equal(check.title, "convlens report");
    assert.ok(check.images >= 2, `only ${check.images} images`);
    assertReadable(check);
    // A page with a broken image is caught.
    await Deno.writeTextFile(
      `${out}/broken.html`,
      '<!DOCTYPE html><title>x</title><img src="data:image/png;base64,AAAA">',
    );
    const bad = await checkPage(`file://${out}/broken.html`);
    assert.equal(bad.broken.length, 1);
  },
});

Deno.test({
  name: "a report with plots, colour bars and repeated plugins reads well at 1400 and 420 px",
  ignore: !chromiumPath() && !Deno.env.get("CI"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "convlens_figures_" });
    const epoch = [1, 2, 3, 4, 5, 6];
    const training = new Result("train", "Training a small ConvNet");
    training.family = "train";
    const curves = learningCurves({
      epoch,
      loss: [1.9, 0.8, 0.5, 0.38, 0.31, 0.27],
      valLoss: [1.2, 0.7, 0.52, 0.47, 0.46, 0.48],
      accuracy: [0.42, 0.78, 0.86, 0.9, 0.92, 0.93],
      valAccuracy: [0.63, 0.8, 0.85, 0.87, 0.87, 0.86],
    }, "mnist");
    training.addPlot("loss", curves.loss, "Loss per epoch");
    training.addPlot("accuracy", curves.accuracy!, "Accuracy per epoch");
    const results = [training];
    for (const eps of [0.1, 0.2]) {
      const r = new Result("adversarial", `FGSM at eps ${eps}`);
      r.family = "fool";
      r.addPlot(
        "success",
        linePlot([
          { name: "ConvNet", x: [0, 0.1, 0.2, 0.3], y: [0, 12, 48, 81] },
          { name: "linear classifier", x: [0, 0.1, 0.2, 0.3], y: [0, 55, 93, 99] },
        ], { xLabel: "epsilon", yLabel: "attack success (%)", yDomain: [0, 100] }),
        "Attack success against epsilon",
      );
      results.push(r);
    }
    const heat = new Result("saliency", "Saliency of a 28x28 digit");
    heat.family = "attribute";
    const map = tf.tidy(() => tf.randomUniform([28, 28], 0, 0.8, "float32", 1) as tf.Tensor2D);
    const colored = colormap(map, "inferno", { min: 0, max: 0.8 });
    await heat.addImage("saliency", colored, "max over channels of |d score / d pixel|", {
      colorbar: { colormap: "inferno", min: 0, max: 0.8, label: "|gradient|" },
    });
    await heat.addImage("again", colored, "the same map, twice: gradient ids stay unique", {
      colorbar: { colormap: "inferno", min: 0, max: 0.8, label: "|gradient|" },
    });
    heat.addPlot(
      "deletion",
      linePlot([
        { name: "saliency", x: [0, 0.25, 0.5, 0.75, 1], y: [0.99, 0.4, 0.12, 0.05, 0.02] },
        { name: "random order", x: [0, 0.25, 0.5, 0.75, 1], y: [0.99, 0.9, 0.7, 0.3, 0.02] },
      ], { xLabel: "fraction of pixels deleted", yLabel: "probability of the class" }),
      "Deletion curves",
    );
    tf.dispose([map, colored]);
    results.push(heat);
    const report = `${out}/figures.html`;
    await writeReport(report, results, { title: "figures" });
    const html = await Deno.readTextFile(report);
    assert.match(html, /<meta name="viewport"/);
    assert.match(html, /id="adversarial-2"/);
    const saved = await heat.save(out);
    assert.ok(saved.some((p) => p.endsWith("saliency-deletion.svg")), saved.join(", "));
    const json = JSON.parse(await Deno.readTextFile(`${out}/saliency.json`));
    assert.deepEqual(json.plots.map((p: { file: string }) => p.file), ["saliency-deletion.svg"]);
    await Deno.mkdir(SHOTS, { recursive: true });
    const check = await checkPage(`file://${report}`, {
      widths: [1400, 420],
      screenshotDir: SHOTS,
      name: "figures",
    });
    console.log(`screenshots: ${check.screenshots.join(", ")}`);
    assert.equal(check.svgs.filter((s) => s.class === "plot").length, 5);
    assert.equal(check.svgs.filter((s) => s.class === "colorbar").length, 2);
    assertReadable(check);
    for (const r of results) r.dispose();
  },
});

Deno.test({
  name: "plugin heatmaps in the report carry labelled colour bars and every tile's caption",
  ignore: !chromiumPath() && !Deno.env.get("CI"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await initBackend("cpu", { quiet: true });
    const net = await loadNet(new URL("../models/mnist", import.meta.url).pathname);
    const d = await heldOutDigits({ count: 3 });
    const images = imagesFromPixels(net, d.images, d.labels);
    const runs: [AnyPlugin, Record<string, unknown>][] = [
      [saliency as AnyPlugin, {}],
      [gradCam as AnyPlugin, {}],
      [occlusion as AnyPlugin, { size: 8, stride: 4 }],
      [adversarial as AnyPlugin, { method: "fgsm", epsilon: 0.2, sweep: [0, 0.1, 0.3], show: 3 }],
      [filters as AnyPlugin, {}],
      [activations as AnyPlugin, { normalize: "layer" }],
      [classModel as AnyPlugin, { classes: [0, 1, 2, 3], steps: 20 }],
    ];
    const results = [];
    for (const [plugin, params] of runs) {
      const r = await runPlugin(net, images, plugin, params);
      r.family = plugin.family;
      results.push(r);
    }
    disposeImages(images);
    const out = await Deno.makeTempDir({ prefix: "convlens_heatmaps_" });
    const report = `${out}/plugins.html`;
    await writeReport(report, results, { title: "plugin figures" });
    await Deno.mkdir(SHOTS, { recursive: true });
    const check = await checkPage(`file://${report}`, {
      widths: [1400, 420],
      screenshotDir: SHOTS,
      name: "plugins",
    });
    console.log(`screenshots: ${check.screenshots.join(", ")}`);
    assertReadable(check);
    const heatmaps = ["saliency", "grad-cam", "occlusion", "adversarial", "filters", "activations"];
    for (const f of check.figures.filter((f) => heatmaps.includes(f.plugin))) {
      assert.ok(f.colorbarTicks.length >= 2 && f.colorbarLabel, `${f.plugin}: no colour bar`);
    }
    // Every tile caption a result holds is on the page, in grid order.
    const expected = results.flatMap((r) => r.images.filter((im) => im.tiles?.some(Boolean)));
    const shown = check.figures.filter((f) => f.tiles.length);
    assert.deepEqual(shown.map((f) => f.tiles), expected.map((im) => im.tiles));
    assert.ok(shown.length >= 6, `only ${shown.length} figures with tile captions`);
    assert.ok(check.svgs.some((s) => s.xLabels.some((l) => l.startsWith("epsilon"))));
    for (const r of results) r.dispose();
  },
});
