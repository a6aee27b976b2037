import assert from "node:assert/strict";
import { runDemo } from "../scripts/demo.ts";
import { checkPage, chromiumPath } from "./_chromium.ts";

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
    const check = await checkPage(`file://${summary.report}`);
    assert.equal(check.title, "convlens report");
    assert.ok(check.images >= 2, `only ${check.images} images`);
    assert.deepEqual(check.broken, []);
    assert.deepEqual(check.errors, []);
    // A page with a broken image is caught.
    await Deno.writeTextFile(
      `${out}/broken.html`,
      '<!DOCTYPE html><title>x</title><img src="data:image/png;base64,AAAA">',
    );
    const bad = await checkPage(`file://${out}/broken.html`);
    assert.equal(bad.broken.length, 1);
  },
});
