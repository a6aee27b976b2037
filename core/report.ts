/**
 * The HTML report: one self-contained page (images embedded as data URLs, no
 * external resources) with a header naming the model and backend and one section
 * per plugin result.
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
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{margin-bottom:0}.meta{color:#666;margin-top:.2em}
nav a{margin-right:1em}
section{border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
caption{text-align:left;font-weight:600;padding:4px 0}
table.figures th{background:#f6f6f6}
figure{display:inline-block;margin:.4em 1em .4em 0;vertical-align:top}
figure img{image-rendering:pixelated;max-width:100%;height:auto}
figcaption{color:#555;font-size:12px;max-width:600px}
.note{color:#a60}
`;

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
  const nav = results.map((r) => `<a href="#${esc(r.plugin)}">${esc(r.plugin)}</a>`).join("");
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(title)}</h1><p class="meta">${meta}</p>`,
    options.intro ?? "",
    `<nav>${nav}</nav>`,
    ...results.map((r) => r.toHtml()),
    "</body></html>",
    "",
  ].join("\n");
}

/**
 * Writes the report atomically (no partial file on failure).
 * @param path The `.html` file.
 * @param results Results, in order.
 * @param options Title and header.
 */
export async function writeReport(
  path: string,
  results: readonly Result[],
  options: ReportOptions = {},
): Promise<void> {
  await writeFileAtomic(path, renderReport(results, options));
}
