/**
 * The HTML report: one self-contained page (images embedded as data URLs, plots
 * and colour bars as inline SVG, no external resources) with a header naming the
 * model and backend, a table of contents grouped by plugin family, and one section
 * per plugin result. Every section has its own id (a plugin run twice gets `name`,
 * `name-2`, ...), and the page reflows down to phone widths.
 *
 * @module
 */
import type { Result } from "./result.ts";
import { writeFileAtomic } from "./files.ts";

/** Options of {@linkcode renderReport}. */
export interface ReportOptions {
  /** Page title. @default "convlens report" */
  title?: string;
  /** Model description for the header. @default "" */
  model?: string;
  /** Backend for the header. @default "" */
  backend?: string;
  /** Extra HTML placed under the header (trusted). @default "" */
  intro?: string;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{margin-bottom:0;overflow-wrap:anywhere}.meta{color:#666;margin-top:.2em}
nav{display:flex;flex-wrap:wrap;gap:.4em 2em;margin:1em 0;padding:.6em 0;border-top:1px solid #ddd}
nav div{min-width:9em}nav h3{font-size:13px;margin:0 0 .2em;color:#666;text-transform:uppercase}
nav ul{list-style:none;margin:0;padding:0}nav li{margin:.1em 0}
section{border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
section h2{font-size:1.25em;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.6em 0;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
caption{text-align:left;font-weight:600;padding:4px 0;overflow-wrap:anywhere}
table.figures th{background:#f6f6f6}
figure{display:inline-block;margin:.4em 1em .8em 0;vertical-align:top;max-width:100%}
figure img{display:block;image-rendering:pixelated;max-width:100%;height:auto}
figure svg{display:block;max-width:100%;height:auto}
figure.plot svg{width:560px}
figcaption{color:#444;font-size:13px;max-width:36em;margin-top:.3em;overflow-wrap:anywhere}
ol.tiles{display:grid;list-style:none;margin:.1em 0 .3em;padding:0;max-width:100%;gap:0 2px}
ol.tiles li{font-size:11px;line-height:1.25;text-align:center;color:#333;overflow-wrap:anywhere;min-width:0}
.note{color:#a60}
@media (max-width:600px){body{padding:.5em .8em;font-size:14px}figure{margin-right:0}}
`;

/** Order of the families in the table of contents; others follow by name. */
const FAMILY_ORDER = ["inspect", "attribute", "optimize", "fool", "train", "design"];

/** Unique section ids: the plugin's name, then `name-2`, `name-3`, ... for repeats. */
function sectionIds(results: readonly Result[]): string[] {
  const seen = new Map<string, number>();
  const taken = new Set<string>();
  return results.map((r) => {
    const base = r.plugin.replace(/[^A-Za-z0-9._-]+/g, "_") || "result";
    let n = seen.get(base) ?? 0;
    let id: string;
    do id = ++n === 1 ? base : `${base}-${n}`; while (taken.has(id));
    seen.set(base, n);
    taken.add(id);
    return id;
  });
}

function navigation(results: readonly Result[], ids: readonly string[]): string {
  const groups = new Map<string, string[]>();
  results.forEach((r, i) => {
    const family = r.family ?? "other";
    const label = ids[i] === r.plugin
      ? r.plugin
      : `${r.plugin} (${ids[i].slice(r.plugin.length + 1)})`;
    const link = `<li><a href="#${esc(ids[i])}" title="${esc(r.title)}">${esc(label)}</a></li>`;
    groups.set(family, [...(groups.get(family) ?? []), link]);
  });
  const rank = (f: string) => {
    const i = FAMILY_ORDER.indexOf(f);
    return i < 0 ? FAMILY_ORDER.length : i;
  };
  const families = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return families.map((f) => `<div><h3>${esc(f)}</h3><ul>${groups.get(f)!.join("")}</ul></div>`)
    .join("");
}

/**
 * Renders results as one HTML page.
 * @param results Results, in order.
 * @param options Title and header.
 * @returns The page.
 */
export function renderReport(results: readonly Result[], options: ReportOptions = {}): string {
  const title = options.title ?? "convlens report";
  const meta = [
    options.model ? `model: ${esc(options.model)}` : "",
    options.backend ? `backend: ${esc(options.backend)}` : "",
    `made ${new Date().toISOString().slice(0, 19).replace("T", " ")} UTC`,
  ].filter(Boolean).join(" &middot; ");
  const ids = sectionIds(results);
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(title)}</h1><p class="meta">${meta}</p>`,
    options.intro ?? "",
    `<nav aria-label="contents">${navigation(results, ids)}</nav>`,
    ...results.map((r, i) => r.toHtml(ids[i])),
    "</body></html>",
    "",
  ].join("\n");
}

/**
 * Writes the report atomically (no partial file on failure).
 * @param path The `.html` file.
 * @param results Results, in order.
 * @param options Title and header.
 * @throws {RangeError} for an empty path or one that is a folder, before
 *   anything is written.
 */
export async function writeReport(
  path: string,
  results: readonly Result[],
  options: ReportOptions = {},
): Promise<void> {
  if (typeof path !== "string" || path.trim() === "" || path.endsWith("/")) {
    throw new RangeError(
      `The report's path ${
        JSON.stringify(path)
      } is not a file name: give one such as out/report.html`,
    );
  }
  let isFolder = false;
  try {
    isFolder = (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      throw new RangeError(
        `Cannot write the report "${path}": no permission; run with --allow-read and --allow-write for it`,
      );
    }
  }
  if (isFolder) {
    throw new RangeError(
      `The report's path "${path}" is a folder: give a file in it, such as ${
        path.replace(/\/+$/, "")
      }/report.html`,
    );
  }
  const html = renderReport(results, options);
  try {
    await writeFileAtomic(path, html);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      throw new RangeError(
        `Cannot write the report "${path}": no write permission; run with --allow-write=${path}`,
      );
    }
    throw err;
  }
}
