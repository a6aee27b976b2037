import assert from "node:assert/strict";
import { oneDnn } from "../backends/onednn.ts";
import { convCases, fuzz, TOLERANCE } from "./_conv_fuzz.ts";

const dnnl = oneDnn();
const required = Deno.env.get("CONVLENS_REQUIRE_NATIVE") === "1";
if (required && typeof dnnl === "string") {
  throw new Error(`CONVLENS_REQUIRE_NATIVE=1 but oneDNN is unavailable: ${dnnl}`);
}

Deno.test({
  name:
    "native convolutions survive and match cpu on 150 random geometries, each in its own process",
  ignore: typeof dnnl === "string",
  fn: async () => {
    const cases = convCases(150, 1);
    // The set covers what it claims: the 1x1 strided shortcuts with few
    // channels that crashed oneDNN, odd and even sizes, both conv kinds.
    const shortcuts = cases.filter((c) =>
      c.kh === 1 && c.kw === 1 && c.stride[0] > 1 && c.inChannels < 16
    );
    assert.ok(shortcuts.length >= 15, `${shortcuts.length} few-channel 1x1 strided cases`);
    assert.ok(cases.some((c) => c.depthwise && c.outChannels === 2));
    assert.ok(cases.some((c) => c.dilation === 2) && cases.some((c) => Array.isArray(c.pad)));
    assert.ok(cases.some((c) => c.h % 2 === 1) && cases.some((c) => c.stride[0] === 3));

    const s = await fuzz(cases);
    const show = (list: typeof s.crashes) =>
      list.slice(0, 5).map((o) =>
        `${o.crash ?? JSON.stringify(o.report)} ${JSON.stringify(o.case)}`
      )
        .join("\n");
    assert.equal(s.cases, 150);
    assert.equal(s.crashes.length, 0, `crashed:\n${show(s.crashes)}`);
    assert.equal(s.mismatches.length, 0, `beyond ${TOLERANCE} of cpu:\n${show(s.mismatches)}`);
    // Only the refused few-channel shortcuts may go to WASM, and they say why.
    for (const o of s.fallbacks) {
      for (const [kernel, why] of Object.entries(o.report!.fallbacks)) {
        assert.equal(kernel, "Conv2DBackpropFilter", `${kernel}: ${why}`);
        assert.match(why, /oneDNN issue 6035/);
      }
    }
    assert.ok(s.fallbacks.length <= 15, `${s.fallbacks.length} cases fell back to WASM`);
  },
});
