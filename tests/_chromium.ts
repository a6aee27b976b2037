/**
 * A small Chrome DevTools Protocol client for the report test: starts Debian's
 * headless Chromium, loads a page, and reports whether every image decoded and
 * what errors the page logged.
 *
 * @module
 */

/** What the browser saw. */
export interface PageCheck {
  /** Number of <img> elements. */
  images: number;
  /** Images that did not decode (src prefixes). */
  broken: string[];
  /** Console errors, exceptions and failed loads. */
  errors: string[];
  /** The page title. */
  title: string;
  /** Ids that more than one element has. */
  duplicateIds: string[];
  /** Every <svg>: its class and the texts of its x- and y-axis labels. */
  svgs: { class: string; xLabels: string[]; yLabels: string[] }[];
  /** Screenshots written, one per width asked for. */
  screenshots: string[];
  /** Per width asked for: how many CSS pixels the page is wider than the window. */
  overflow: Record<number, number>;
  /** Every image figure: its section, colour bar and tile captions. */
  figures: FigureCheck[];
  /** Per width asked for: captions (tile captions and figcaptions) whose text is cut off. */
  clipped: Record<number, string[]>;
}

/** What the browser saw of one `<figure class="image">`. */
export interface FigureCheck {
  /** The plugin of its section (`data-plugin`). */
  plugin: string;
  /** Its figcaption. */
  caption: string;
  /** Its colour bar's tick texts, left to right; empty without a colour bar. */
  colorbarTicks: string[];
  /** Its colour bar's label ("" without one). */
  colorbarLabel: string;
  /** Its tile captions, in grid order. */
  tiles: string[];
  /** Whether some text of its colour bar runs past the bar's SVG box. */
  colorbarCut: boolean;
}

/** Options of {@linkcode checkPage}. */
export interface CheckPageOptions {
  /** Window widths (CSS pixels) to screenshot the page at. @default [] */
  widths?: number[];
  /** Folder for the screenshots `<name>-<width>.png`. @default a new temporary folder */
  screenshotDir?: string;
  /** Base name of the screenshots. @default "page" */
  name?: string;
  /** Tallest screenshot, in CSS pixels (long pages are cut). @default 5000 */
  maxHeight?: number;
}

/** Path of the Chromium binary, or undefined when not installed. */
export function chromiumPath(): string | undefined {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * Loads `url` in headless Chromium and checks its images and errors.
 * @param url A file:// or http:// URL.
 * @param options Widths to screenshot the page at, and where.
 * @returns What the browser saw.
 */
export async function checkPage(url: string, options: CheckPageOptions = {}): Promise<PageCheck> {
  const bin = chromiumPath();
  if (!bin) throw new Error("Chromium is not installed: apt-get install chromium");
  const profile = await Deno.makeTempDir({ prefix: "convlens_chromium_" });
  const child = new Deno.Command(bin, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let wsUrl = "";
  const deadline = Date.now() + 30_000;
  while (!wsUrl && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    wsUrl = buffered.match(/DevTools listening on (ws:\/\/\S+)/)?.[1] ?? "";
  }
  // Keep draining stderr so that Chromium never blocks on a full pipe.
  const drain = (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch { /* closed */ }
  })();
  try {
    if (!wsUrl) throw new Error(`Chromium did not start: ${buffered.slice(0, 500)}`);
    const browser = await fetch(
      wsUrl.replace("ws://", "http://").replace(/\/devtools\/.*/, "/json/list"),
    );
    const targets = await browser.json() as { type: string; webSocketDebuggerUrl: string }[];
    const page = targets.find((t) => t.type === "page")!;
    const ws = new WebSocket(page.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    let id = 0;
    const pending = new Map<number, (v: Record<string, unknown>) => void>();
    const errors: string[] = [];
    let loaded: () => void = () => {};
    const loadedP = new Promise<void>((r) => (loaded = r));
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id && pending.has(msg.id)) {
        pending.get(msg.id)!(msg.result ?? { error: msg.error });
        pending.delete(msg.id);
      } else if (msg.method === "Runtime.consoleAPICalled" && msg.params.type === "error") {
        errors.push(
          `console.error: ${
            JSON.stringify(msg.params.args.map((a: { value?: unknown }) => a.value))
          }`,
        );
      } else if (msg.method === "Runtime.exceptionThrown") {
        errors.push(`exception: ${msg.params.exceptionDetails.text}`);
      } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
        errors.push(`log: ${msg.params.entry.text}`);
      } else if (msg.method === "Page.loadEventFired") {
        loaded();
      }
    };
    const send = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<Record<string, unknown>>((resolve) => {
        pending.set(++id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      });
    await send("Runtime.enable");
    await send("Log.enable");
    await send("Page.enable");
    await send("Page.navigate", { url });
    await loadedP;
    const evaluated = await send("Runtime.evaluate", {
      expression: `(async () => {
        const imgs = [...document.images];
        await Promise.all(imgs.map((i) => i.decode().catch(() => {})));
        return JSON.stringify({
          images: imgs.length,
          broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src.slice(0, 40)),
          title: document.title,
        });
      })()`,
      awaitPromise: true,
      returnByValue: true,
    });
    const value = JSON.parse((evaluated.result as { value: string }).value);
    const structure = await send("Runtime.evaluate", {
      expression: `JSON.stringify({
        duplicateIds: (() => {
          const n = new Map();
          for (const e of document.querySelectorAll("[id]")) n.set(e.id, (n.get(e.id) ?? 0) + 1);
          return [...n].filter(([, c]) => c > 1).map(([id]) => id);
        })(),
        svgs: [...document.querySelectorAll("svg")].map((s) => {
          const labels = (axis) => [...s.querySelectorAll("." + axis + " .axis-label")]
            .map((t) => t.textContent.trim()).filter(Boolean);
          return { class: s.getAttribute("class") ?? "", xLabels: labels("x-axis"), yLabels: labels("y-axis") };
        }),
        figures: [...document.querySelectorAll("figure.image")].map((f) => ({
          plugin: f.closest("section")?.dataset.plugin ?? "",
          caption: f.querySelector("figcaption")?.textContent ?? "",
          colorbarTicks: [...f.querySelectorAll("svg.colorbar .tick")].map((t) => t.textContent.trim()),
          colorbarLabel: f.querySelector("svg.colorbar .axis-label")?.textContent.trim() ?? "",
          tiles: [...f.querySelectorAll("ol.tiles li")].map((t) => t.textContent),
          colorbarCut: [...f.querySelectorAll("svg.colorbar text")].some((t) => {
            const b = t.getBBox(), w = t.ownerSVGElement.viewBox.baseVal.width;
            return b.x < 0 || b.x + b.width > w;
          }),
        })),
      })`,
      returnByValue: true,
    });
    Object.assign(value, JSON.parse((structure.result as { value: string }).value));
    const screenshots: string[] = [];
    const overflow: Record<number, number> = {};
    const clipped: Record<number, string[]> = {};
    const widths = options.widths ?? [];
    const dir = widths.length
      ? options.screenshotDir ?? await Deno.makeTempDir({ prefix: "convlens_shots_" })
      : "";
    for (const width of widths) {
      await send("Emulation.setDeviceMetricsOverride", {
        width,
        height: 900,
        deviceScaleFactor: 1,
        mobile: width < 600,
      });
      const size = await send("Runtime.evaluate", {
        expression: "JSON.stringify([document.documentElement.scrollWidth, " +
          "document.documentElement.scrollHeight, window.innerWidth])",
        returnByValue: true,
      });
      const [scrollWidth, scrollHeight, inner] = JSON.parse(
        (size.result as { value: string }).value,
      ) as number[];
      overflow[width] = Math.max(0, scrollWidth - inner);
      // Text is cut off when its box is narrower or shorter than its content.
      const cut = await send("Runtime.evaluate", {
        expression: `JSON.stringify([...document.querySelectorAll("ol.tiles li, figcaption")]
          .filter((e) => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
          .map((e) => e.textContent.slice(0, 60)))`,
        returnByValue: true,
      });
      clipped[width] = JSON.parse((cut.result as { value: string }).value);
      const shot = await send("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
        clip: {
          x: 0,
          y: 0,
          width,
          height: Math.min(scrollHeight, options.maxHeight ?? 5000),
          scale: 1,
        },
      });
      const path = `${dir}/${options.name ?? "page"}-${width}.png`;
      const b64 = shot.data as string;
      await Deno.writeFile(path, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
      screenshots.push(path);
    }
    ws.close();
    return { ...value, errors, screenshots, overflow, clipped };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await drain;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
