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
 * @returns What the browser saw.
 */
export async function checkPage(url: string): Promise<PageCheck> {
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
    ws.close();
    return { ...value, errors };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await drain;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
