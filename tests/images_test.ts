import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import {
  decodeImage,
  encodeJpeg,
  encodePng,
  pngDataUrl,
  type RawImage,
  rawToTensor,
  readImage,
  tensorToRaw,
  writePng,
} from "../core/images/codecs.ts";
import { resize, toDisplay, toRgb } from "../core/images/display.ts";
import { colormap, colormapLut, overlay } from "../core/images/colormaps.ts";
import { drawBox, grid, gridLayout } from "../core/images/grids.ts";
import {
  FIRST_CHAR,
  glyph,
  GLYPH_HEIGHT,
  GLYPH_WIDTH,
  LAST_CHAR,
  renderText,
  textWidth,
} from "../core/_font.ts";

await initBackend("cpu", { quiet: true });

/** A small seeded generator, so failures reproduce. */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomRaw(width: number, height: number, seed: number): RawImage {
  const r = rand(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i % 4 === 3) ? 255 : Math.floor(r() * 256);
  return { width, height, data };
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An 8-bit grayscale PNG (colour type 0), built by hand. */
async function grayPng(width: number, height: number, pixels: Uint8Array): Promise<Uint8Array> {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = 0; // gray
  const rows = new Uint8Array(height * (width + 1)); // filter byte 0 per row
  for (let y = 0; y < height; y++) {
    rows.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const zlib = new Uint8Array(
    await new Response(new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate")))
      .arrayBuffer(),
  );
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", zlib),
    pngChunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `index ${i}: ${actual[i]} vs ${expected[i]} (tolerance ${tol})`,
    );
  }
}

/** Runs `fn`, disposes what it returns, and checks no tensor was left behind. */
async function noLeak(fn: () => tf.Tensor | Promise<unknown>): Promise<void> {
  const before = tf.memory().numTensors;
  const out = await fn();
  if (out instanceof tf.Tensor) out.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
}

function hexRgb(hex: string): number[] {
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
}

Deno.test("a PNG round trip keeps every 8-bit RGB value exactly", async () => {
  const raw = randomRaw(7, 5, 1);
  const back = await decodeImage(await encodePng(raw), "mem.png");
  assert.equal(back.width, 7);
  assert.equal(back.height, 5);
  assert.deepEqual(back.data, raw.data);
  const t = rawToTensor(back, 3);
  const again = await tensorToRaw(t);
  t.dispose();
  assert.deepEqual(again.data, raw.data);
});

Deno.test("a grayscale PNG decodes to gray and round-trips through a 1-channel tensor", async () => {
  const pixels = new Uint8Array(4 * 3).map((_, i) => (i * 23) % 256);
  const raw = await decodeImage(await grayPng(4, 3, pixels), "gray.png");
  const t = rawToTensor(raw, 1);
  assert.deepEqual(t.shape, [3, 4, 1]);
  assertClose(t.dataSync(), Array.from(pixels, (v) => v / 255), 1e-7);
  const back = await tensorToRaw(t);
  t.dispose();
  for (let i = 0; i < pixels.length; i++) {
    assert.deepEqual(Array.from(back.data.subarray(i * 4, i * 4 + 4)), [
      pixels[i],
      pixels[i],
      pixels[i],
      255,
    ]);
  }
  const written = await decodeImage(await encodePng(back), "gray2.png");
  assert.deepEqual(written.data, back.data);
});

Deno.test("encodePng is deterministic, keeps alpha and writes gray images as gray PNGs", async () => {
  const raw = randomRaw(5, 4, 9);
  raw.data[3] = 7;
  const a = await encodePng(raw);
  assert.deepEqual(await encodePng(raw), a);
  assert.equal(a[25], 6, "RGBA colour type");
  assert.deepEqual((await decodeImage(a, "alpha.png")).data, raw.data);
  const gray = rawToTensor(randomRaw(5, 4, 10), 1);
  const png = await encodePng(await tensorToRaw(gray));
  gray.dispose();
  assert.equal(png[25], 0, "gray colour type");
  const opaque = await encodePng(randomRaw(5, 4, 11));
  assert.equal(opaque[25], 2, "RGB colour type");
});

Deno.test("gray from RGB uses the 0.299/0.587/0.114 luminance", () => {
  const raw: RawImage = {
    width: 2,
    height: 1,
    data: new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 255, 255]),
  };
  const t = rawToTensor(raw, 1);
  assertClose(t.dataSync(), [0.299, 0.114]);
  t.dispose();
});

Deno.test("a JPEG decodes to values close to the original", async () => {
  const width = 32, height = 24;
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      data.set([x * 8, y * 10, 128, 255], o);
    }
  }
  const jpeg = await encodeJpeg({ width, height, data }, 95);
  assert.deepEqual(Array.from(jpeg.subarray(0, 3)), [0xff, 0xd8, 0xff]);
  const back = await decodeImage(jpeg, "smooth.jpg");
  assert.equal(back.width, width);
  assert.equal(back.height, height);
  let worst = 0;
  for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(back.data[i] - data[i]));
  assert.ok(worst <= 12, `largest JPEG error ${worst}`);
});

const DECODE_ERROR =
  /^Cannot decode image "(.*)": not a valid PNG or JPEG \(.+\)\. Give a PNG or JPEG file\.$/;

Deno.test("a corrupt PNG, a truncated PNG and random bytes each give a clear error naming the file", async () => {
  const png = await encodePng(randomRaw(16, 16, 2));
  const corrupt = png.slice();
  for (let i = 33; i < corrupt.length - 12; i++) corrupt[i] ^= 0x5a;
  const r = rand(3);
  const cases: [string, Uint8Array][] = [
    ["corrupt.png", corrupt],
    ["truncated.png", png.slice(0, Math.floor(png.length / 2))],
    ["random.bin", new Uint8Array(200).map(() => Math.floor(r() * 256))],
    ["empty.png", new Uint8Array()],
    ["truncated.jpg", (await encodeJpeg(randomRaw(8, 8, 4))).slice(0, 40)],
  ];
  for (const [name, bytes] of cases) {
    await assert.rejects(decodeImage(bytes, name), (e: Error) => {
      const m = DECODE_ERROR.exec(e.message);
      assert.ok(m, `unexpected message for ${name}: ${e.message}`);
      assert.equal(m[1], name);
      assert.ok(!e.message.includes("\n"), "message has no stack lines");
      return true;
    });
  }
});

Deno.test("readImage names a missing file and reads an existing one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/nope.png`;
    await assert.rejects(readImage(missing), (e: Error) => {
      assert.ok(e.message.includes(`"${missing}"`), e.message);
      assert.match(e.message, /no such file/);
      return true;
    });
    const raw = randomRaw(3, 2, 5);
    await Deno.writeFile(`${dir}/ok.png`, await encodePng(raw));
    assert.deepEqual((await readImage(`${dir}/ok.png`)).data, raw.data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writePng writes atomically into new folders and leaves nothing for a bad tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a/b/img.png`;
    const t = tf.tensor3d([0, 0.5, 1, 0.25], [2, 2, 1]);
    await writePng(path, t);
    t.dispose();
    const back = await readImage(path);
    assert.deepEqual(Array.from(back.data.filter((_, i) => i % 4 === 0)), [0, 128, 255, 64]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/a/b`)].map((e) => e.name), ["img.png"]);

    const bad = tf.zeros([4, 4]);
    const badPath = `${dir}/c/bad.png`;
    await assert.rejects(writePng(badPath, bad as tf.Tensor3D), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.ok(e.message.includes(badPath), e.message);
      assert.match(e.message, /\[height, width, 1 or 3 or 4\]/);
      return true;
    });
    const badChannels = tf.zeros([4, 4, 2]) as tf.Tensor3D;
    await assert.rejects(writePng(badPath, badChannels), RangeError);
    bad.dispose();
    badChannels.dispose();
    await assert.rejects(Deno.stat(`${dir}/c`), Deno.errors.NotFound);

    // A destination whose parent is a file fails without leaving anything behind.
    await Deno.writeTextFile(`${dir}/file`, "x");
    await assert.rejects(
      writePng(`${dir}/file/x.png`, back),
      /Cannot write|Not a directory|exists/i,
    );
    assert.equal(await Deno.readTextFile(`${dir}/file`), "x");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tensorToRaw clamps and rounds, and pngDataUrl embeds the bytes", async () => {
  const t = tf.tensor3d([-0.5, 0.5, 1.5, NaN], [1, 4, 1]);
  const raw = await tensorToRaw(t);
  t.dispose();
  assert.deepEqual(Array.from(raw.data.filter((_, i) => i % 4 === 0)), [0, 128, 255, 0]);
  const png = await encodePng(raw);
  const url = pngDataUrl(png);
  assert.ok(url.startsWith("data:image/png;base64,"));
  const decoded = Uint8Array.from(atob(url.slice(22)), (c) => c.charCodeAt(0));
  assert.deepEqual(decoded, png);
});

Deno.test("colormap endpoints are the real viridis, inferno and gray endpoints", () => {
  const ramp = tf.tensor2d([[0, 0.5, 1]]);
  const ends: [("viridis" | "inferno" | "gray"), string, string][] = [
    ["viridis", "440154", "fde725"],
    ["inferno", "000004", "fcffa4"],
    ["gray", "000000", "ffffff"],
  ];
  for (const [name, first, last] of ends) {
    const rgb = colormap(ramp, name);
    assert.deepEqual(rgb.shape, [1, 3, 3]);
    const v = rgb.dataSync();
    rgb.dispose();
    assertClose(v.slice(0, 3), hexRgb(first), 1e-6);
    assertClose(v.slice(6, 9), hexRgb(last), 1e-6);
  }
  // Viridis at 0.5 is matplotlib's entry 128, #21918c.
  const mid = colormap(ramp, "viridis");
  assertClose(mid.dataSync().slice(3, 6), hexRgb("21918c"), 1e-6);
  mid.dispose();
  ramp.dispose();
  assert.equal(colormapLut("viridis").length, 256 * 3);
});

Deno.test("coolwarm is blue-white-red with 0 at the centre of a symmetric range", () => {
  const t = tf.tensor2d([[-2, 0, 0.5, 2]]);
  const rgb = colormap(t, "coolwarm");
  const v = rgb.dataSync();
  rgb.dispose();
  const [lo, centre, , hi] = [v.slice(0, 3), v.slice(3, 6), v.slice(6, 9), v.slice(9, 12)];
  assert.ok(lo[2] > lo[0] + 0.4, `low end is blue: ${lo}`);
  assert.ok(hi[0] > hi[2] + 0.4, `high end is red: ${hi}`);
  for (const c of centre) assert.ok(c > 0.85, `centre is near white: ${centre}`);
  // An explicit range moves the centre: with [0, 4], the value 2 is the centre.
  const shifted = colormap(tf.tensor2d([[2]]), "coolwarm", { min: 0, max: 4 });
  assertClose(shifted.dataSync(), centre, 1e-6);
  shifted.dispose();
  t.dispose();
});

Deno.test("colormap colours a batch of maps in one call", () => {
  const t = tf.tensor3d([[[0, 1]], [[1, 0]]]);
  const rgb = colormap(t, "viridis");
  assert.deepEqual(rgb.shape, [2, 1, 2, 3]);
  const v = rgb.dataSync();
  assertClose(v.slice(0, 3), hexRgb("440154"), 1e-6);
  assertClose(v.slice(9, 12), hexRgb("440154"), 1e-6);
  rgb.dispose();
  t.dispose();
});

Deno.test("toDisplay maps values to [0, 1] in each mode", () => {
  const t = tf.tensor1d([-2, 0, 1, 2]);
  const check = (options: Parameters<typeof toDisplay>[1], expected: number[]): void => {
    const out = toDisplay(t, options);
    assertClose(out.dataSync(), expected);
    out.dispose();
  };
  check({ mode: "minmax" }, [0, 0.5, 0.75, 1]);
  check({ mode: "symmetric" }, [0, 0.5, 0.75, 1]);
  check({ mode: "clip01" }, [0, 0, 1, 1]);
  t.dispose();

  const outlier = tf.tensor1d([...Array.from({ length: 99 }, (_, i) => (i + 1) / 100), 100]);
  const p = toDisplay(outlier, { mode: "percentile", percentile: 99 });
  const v = p.dataSync();
  p.dispose();
  outlier.dispose();
  assert.ok(Math.abs(v[49] - 0.5 / 0.99) < 1e-5, `0.5 maps to about 0.5: ${v[49]}`);
  assert.equal(v[99], 1);

  const batch = tf.tensor2d([[0, 1], [0, 10]]);
  const per = toDisplay(batch, { perItem: true });
  assertClose(per.dataSync(), [0, 1, 0, 1]);
  per.dispose();
  batch.dispose();

  const flat = tf.fill([2, 2], 3);
  const constant = toDisplay(flat);
  assertClose(constant.dataSync(), [0, 0, 0, 0]);
  constant.dispose();
  flat.dispose();
});

Deno.test("resize keeps the rank and gives hand-checked bilinear and nearest values", () => {
  const t = tf.tensor3d([0, 1], [1, 2, 1]);
  const bilinear = resize(t, 1, 4);
  assert.deepEqual(bilinear.shape, [1, 4, 1]);
  assertClose(bilinear.dataSync(), [0, 0.25, 0.75, 1]);
  const nearest = resize(t, 2, 6, "nearest");
  assertClose(nearest.dataSync(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
  const batch = tf.zeros([2, 5, 5, 3]) as tf.Tensor4D;
  const small = resize(batch, 3, 2);
  assert.deepEqual(small.shape, [2, 3, 2, 3]);
  tf.dispose([t, bilinear, nearest, batch, small]);
  assert.throws(() => resize(tf.tensor1d([1]) as unknown as tf.Tensor3D, 2, 2), RangeError);
});

Deno.test("overlay blends a resized heatmap over a gray image", () => {
  const image = tf.fill([2, 2, 1], 0.2) as tf.Tensor3D;
  const heat = tf.tensor3d([1, 0, 0], [1, 1, 3]);
  const out = overlay(image, heat, 0.5);
  assert.deepEqual(out.shape, [2, 2, 3]);
  assertClose(out.dataSync(), [0.6, 0.1, 0.1, 0.6, 0.1, 0.1, 0.6, 0.1, 0.1, 0.6, 0.1, 0.1]);
  tf.dispose([image, heat, out]);
});

Deno.test("the font renders a non-empty glyph for every printable ASCII character", () => {
  for (let code = FIRST_CHAR; code <= LAST_CHAR; code++) {
    const g = glyph(String.fromCharCode(code));
    assert.equal(g.data.length, GLYPH_WIDTH * GLYPH_HEIGHT);
    const ink = g.data.reduce((a, b) => a + b, 0);
    if (code === 32) assert.equal(ink, 0, "space is blank");
    else assert.ok(ink > 0, `glyph for ${JSON.stringify(String.fromCharCode(code))} is empty`);
  }
  // Glyphs differ from one another (no copy-paste slips), except none.
  const seen = new Set<string>();
  for (let code = FIRST_CHAR + 1; code <= LAST_CHAR; code++) {
    const key = glyph(String.fromCharCode(code)).data.join("");
    assert.ok(!seen.has(key), `duplicate glyph at ${String.fromCharCode(code)}`);
    seen.add(key);
  }
  const text = renderText("Ab9", 2);
  assert.equal(text.width, textWidth("Ab9", 2));
  assert.equal(text.width, (3 * 6 - 1) * 2);
  assert.equal(text.height, GLYPH_HEIGHT * 2);
  assert.deepEqual(glyph("é").data, glyph("?").data);
});

Deno.test("grid dimensions equal the computed figure for given cols, pad, scale and labels", () => {
  const tiles = tf.tidy(() =>
    tf.linspace(0, 1, 5 * 28 * 28).reshape([5, 28, 28, 1])
  ) as tf.Tensor4D;
  const options = { cols: 3, pad: 2, scale: 2, labels: ["0", "1", "2", "3", "4"] };
  const figure = grid(tiles, options);
  // rows = 2; cell = 56 wide, 56 + 10 high (label: 2 + 7 + 1 font pixels).
  assert.deepEqual(figure.shape, [2 * (56 + 10 + 2) + 2, 3 * (56 + 2) + 2, 3]);
  const layout = gridLayout(5, 28, 28, options);
  assert.deepEqual([layout.height, layout.width], figure.shape.slice(0, 2));
  const withTitle = grid(tiles, { ...options, title: "Digits", fontScale: 2 });
  assert.deepEqual(withTitle.shape, [20 + 2 * (56 + 20 + 2) + 2, 3 * 58 + 2, 3]);

  const px = figure.arraySync() as number[][][];
  assert.deepEqual(px[0][0], [1, 1, 1], "background is white");
  const tile = tiles.arraySync() as number[][][][];
  assert.ok(Math.abs(px[2][2][0] - tile[0][0][0][0]) < 1e-6, "first tile starts at (pad, pad)");
  assert.ok(Math.abs(px[2 + 3][2 + 5][1] - tile[0][1][2][0]) < 1e-6, "tiles are upscaled x2");
  const second = 2 + 56 + 2;
  assert.ok(Math.abs(px[2][second][2] - tile[1][0][0][0]) < 1e-6, "second tile in row one");
  const labelRows = px.slice(2 + 56, 2 + 66).map((row) => row.slice(2, 58));
  assert.ok(labelRows.flat().some((p) => p[0] === 0), "label has ink");
  // The missing sixth cell is background.
  assert.deepEqual(px[70 + 10][second + 58 + 10], [1, 1, 1]);
  tf.dispose([tiles, figure, withTitle]);
});

Deno.test("grid accepts a list of gray and RGB tiles and rejects mismatched sizes", () => {
  const gray = tf.fill([4, 4, 1], 0.5) as tf.Tensor3D;
  const rgb = tf.fill([4, 4, 3], 0.25) as tf.Tensor3D;
  const figure = grid([gray, rgb], { pad: 1, background: [0, 0, 0] });
  assert.deepEqual(figure.shape, [1 * (4 + 1) + 1, 2 * (4 + 1) + 1, 3]);
  const px = figure.arraySync() as number[][][];
  assert.deepEqual(px[1][1], [0.5, 0.5, 0.5]);
  assert.deepEqual(px[1][6], [0.25, 0.25, 0.25]);
  assert.deepEqual(px[0][0], [0, 0, 0]);
  const other = tf.zeros([5, 4, 1]) as tf.Tensor3D;
  assert.throws(() => grid([gray, other]), /all tiles must have one size/);
  assert.throws(() => grid([]), RangeError);
  tf.dispose([gray, rgb, figure, other]);
});

Deno.test("drawBox outlines a box, clipped to the image", () => {
  const image = tf.zeros([5, 5, 1]) as tf.Tensor3D;
  const out = drawBox(image, { y0: 1, x0: 1, y1: 4, x1: 4 }, [1, 0, 0], 1);
  const px = out.arraySync() as number[][][];
  const red = (y: number, x: number): boolean => px[y][x][0] === 1 && px[y][x][1] === 0;
  for (const [y, x] of [[1, 1], [1, 3], [3, 1], [3, 3], [2, 1], [1, 2]]) assert.ok(red(y, x));
  for (const [y, x] of [[2, 2], [0, 0], [4, 4], [0, 2]]) assert.deepEqual(px[y][x], [0, 0, 0]);
  const clipped = drawBox(image, { y0: -3, x0: 2, y1: 3, x1: 9 }, [0, 1, 0], 2);
  const c = clipped.arraySync() as number[][][];
  assert.deepEqual(c[0][2], [0, 1, 0], "left edge drawn");
  assert.deepEqual(c[2][4], [0, 1, 0], "bottom edge drawn");
  assert.deepEqual(c[0][4], [0, 0, 0], "top and right edges are outside");
  tf.dispose([image, out, clipped]);
});

Deno.test("no image function leaks tensors", async () => {
  const image = tf.tidy(() => tf.randomUniform([8, 8, 3], 0, 1, "float32", 7)) as tf.Tensor3D;
  const map = tf.tidy(() => tf.randomNormal([8, 8], 0, 1, "float32", 8)) as tf.Tensor2D;
  const batch = tf.tidy(() => tf.randomUniform([3, 6, 6, 1], 0, 1, "float32", 9)) as tf.Tensor4D;
  await noLeak(() => rawToTensor(randomRaw(4, 4, 6), 1));
  await noLeak(() => tensorToRaw(image));
  await noLeak(() => toRgb(image));
  await noLeak(() => resize(image, 4, 5));
  await noLeak(() => resize(batch, 12, 12, "nearest"));
  for (const mode of ["minmax", "symmetric", "percentile", "clip01"] as const) {
    await noLeak(() => toDisplay(map, { mode }));
    await noLeak(() => toDisplay(batch, { mode, perItem: true }));
  }
  for (const name of ["viridis", "inferno", "coolwarm", "gray"] as const) {
    await noLeak(() => colormap(map, name));
    await noLeak(() => colormap(map, name, { min: -1 }));
  }
  const heat = tf.tidy(() => colormap(map, "inferno").resizeBilinear([4, 4]) as tf.Tensor3D);
  await noLeak(() => overlay(image, heat));
  heat.dispose();
  await noLeak(() => grid(batch, { scale: 2, labels: ["a", "b"], title: "t" }));
  await noLeak(() => grid([image, image], { cols: 1 }));
  await noLeak(() => drawBox(image, { y0: 0, x0: 0, y1: 4, x1: 4 }));
  const dir = await Deno.makeTempDir();
  await noLeak(() => writePng(`${dir}/x.png`, image));
  await noLeak(() => writePng(`${dir}/bad.png`, map as unknown as tf.Tensor3D).catch(() => {}));
  await Deno.remove(dir, { recursive: true });
  tf.dispose([image, map, batch]);
});

Deno.test("grid, colormap, resize and toDisplay agree on WASM and CPU", async () => {
  const run = (): number[][] =>
    tf.tidy(() => {
      const map = tf.randomNormal([6, 7], 0, 1, "float32", 11) as tf.Tensor2D;
      const tiles = tf.randomUniform([3, 5, 4, 1], 0, 1, "float32", 12) as tf.Tensor4D;
      return [
        colormap(map, "coolwarm"),
        toDisplay(map, { mode: "percentile", percentile: 90 }),
        resize(tiles, 10, 8, "nearest"),
        resize(tiles, 7, 9),
        grid(tiles, { cols: 2, scale: 3, labels: ["x", "y", "z"], title: "T" }),
        overlay(tiles.slice([0], [1]).squeeze([0]) as tf.Tensor3D, colormap(map, "viridis")),
      ].map((t) => Array.from(t.dataSync()));
    });
  const cpu = run();
  await initBackend("wasm", { quiet: true });
  try {
    const wasm = run();
    cpu.forEach((values, i) => assertClose(wasm[i], values, 1e-5));
  } finally {
    await initBackend("cpu", { quiet: true });
  }
});
