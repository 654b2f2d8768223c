/**
 * A notebook whose pixart outputs carry markup and script in their strings, built from real outputs of the executed
 * tutorials: for each pixart MIME type, one output with every string field replaced that the schema still accepts
 * (so the renderer draws and shows the hostile text), and one with every string replaced, schema or not (so the
 * renderer's error path shows it). Each hostile string would set window.__pixartPwned or make a request to a path
 * containing "pwned" if it ever ran or loaded.
 */
import * as fs from "fs";
import * as path from "path";
import { ATTENTION_MIME, LATENTS_MIME, MEMORY_MIME, payloadErrors } from "../../src/display/schemas";
import { repoRoot } from "../helpers/paths";

export const PWNED_FLAG = "__pixartPwned";

export const hostileStrings = [
  `<img src=x onerror="window.${PWNED_FLAG}=1;fetch('/pwned-img')">`,
  `<script>window.${PWNED_FLAG}=1;fetch('/pwned-script')</script>`,
  `javascript:window.${PWNED_FLAG}=1;fetch('/pwned-js')`,
  `<svg xmlns="http://www.w3.org/2000/svg" onload="window.${PWNED_FLAG}=1;fetch('/pwned-svg')"><image href="/pwned-svg-image" onerror="window.${PWNED_FLAG}=1"/></svg>`,
  `<a href="javascript:window.${PWNED_FLAG}=1" onclick="window.${PWNED_FLAG}=1">link</a>`,
  `" onmouseover="window.${PWNED_FLAG}=1" data-x="`,
  `<iframe src="/pwned-iframe"></iframe><style>@import url(/pwned-css);</style>`,
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A copy of `value` where string leaves are replaced in turn, keeping only replacements `accept` allows. */
function poison(root: Json, accept: (candidate: Json) => boolean): Json {
  let counter = 0;
  const copy = JSON.parse(JSON.stringify(root)) as Json;
  const visit = (holder: Json[] | { [k: string]: Json }): void => {
    for (const key of Object.keys(holder)) {
      const v = (holder as Record<string, Json>)[key]!;
      if (typeof v === "string") {
        (holder as Record<string, Json>)[key] = hostileStrings[counter % hostileStrings.length]!;
        if (accept(copy)) counter++;
        else (holder as Record<string, Json>)[key] = v;
      } else if (v !== null && typeof v === "object") {
        visit(v);
      }
    }
  };
  if (copy !== null && typeof copy === "object") visit(copy);
  return copy;
}

function firstOutput(notebook: string, mime: string): { [k: string]: Json } {
  const nb = JSON.parse(fs.readFileSync(path.join(repoRoot(), "notebooks", notebook), "utf8")) as { cells: Array<{ outputs?: Array<{ data?: Record<string, Json> }> }> };
  for (const cell of nb.cells) for (const out of cell.outputs ?? []) if (out.data?.[mime]) return out.data[mime] as { [k: string]: Json };
  throw new Error(`notebooks/${notebook} has no ${mime} output; run the tutorials first`);
}

function output(mime: string, payload: Json, fallbacks: boolean): object {
  return {
    output_type: "display_data",
    metadata: {},
    data: {
      [mime]: payload,
      "image/png": fallbacks ? hostileStrings[2]! : "iVBORw0KGgo=",
      "text/plain": hostileStrings[0]!,
    },
  };
}

/** Writes the hostile notebook to `file`; returns how many string fields each output carries hostile text in. */
export function writeHostileNotebook(file: string): Record<string, number> {
  const sources: Array<[string, string]> = [[LATENTS_MIME, "01-quickstart.ipynb"], [ATTENTION_MIME, "03-attention-maps.ipynb"], [MEMORY_MIME, "01-quickstart.ipynb"]];
  const cells: object[] = [];
  const counts: Record<string, number> = {};
  for (const [mime, nb] of sources) {
    const real = firstOutput(nb, mime);
    const valid = poison(real, (p) => payloadErrors(mime, p).length === 0);
    const all = poison(real, () => true);
    counts[`${mime} (valid)`] = countHostile(valid);
    counts[`${mime} (all strings)`] = countHostile(all);
    cells.push({
      cell_type: "code", execution_count: 1, id: `c${cells.length}`, metadata: {}, source: [hostileStrings[1]!],
      outputs: [output(mime, valid, false), output(mime, all, true)],
    });
  }
  const nb = {
    nbformat: 4, nbformat_minor: 5,
    metadata: { kernelspec: { name: "pixart-ts", display_name: "TypeScript (pixart-ts)", language: "typescript" }, title: hostileStrings[0] },
    cells: [{ cell_type: "markdown", id: "m0", metadata: {}, source: ["Hostile outputs: nothing here may run."] }, ...cells],
  };
  fs.writeFileSync(file, JSON.stringify(nb, null, 1));
  return counts;
}

function countHostile(v: Json): number {
  if (typeof v === "string") return hostileStrings.includes(v) ? 1 : 0;
  if (v === null || typeof v !== "object") return 0;
  return Object.values(v).reduce<number>((a, x) => a + countHostile(x), 0);
}
