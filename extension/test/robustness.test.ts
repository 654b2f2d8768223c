/** Untrusted outputs: newer versions, schema violations, hostile strings, huge and NaN data, random damage. */
import * as assert from "assert";
import { drawAttention } from "../src/attention";
import { drawLatents } from "../src/latents";
import { drawMemory } from "../src/memory";
import { ATTENTION_MIME, LATENTS_MIME, MEMORY_MIME, parsePayload, type PixartMime } from "../src/payload";
import { renderOutput, type Draw } from "../src/render";
import { clone, context, newDocument, notebookBundles, PlotlyRecorder } from "./helpers";

const renderers: [PixartMime, Draw<never>][] = [
  [LATENTS_MIME, drawLatents as Draw<never>],
  [ATTENTION_MIME, drawAttention as Draw<never>],
  [MEMORY_MIME, drawMemory as Draw<never>],
];

const HOSTILE = [
  `<img src=x onerror="window.__xss=1">`,
  `<script>window.__xss=1</script>`,
  `javascript:window.__xss=1`,
  `<svg onload="window.__xss=1"><a href="javascript:alert(1)">x</a></svg>`,
];

/** Every string in `value` replaced by hostile markup (keys and base64 data kept), cycling through HOSTILE. */
function poison(value: unknown, n = { i: 0 }, key = ""): unknown {
  if (typeof value === "string") return ["data", "encoding", "dtype", "kind", "stage", "scope"].includes(key) ? value : HOSTILE[n.i++ % HOSTILE.length];
  if (Array.isArray(value)) return value.map((v) => poison(v, n, key));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k === "weightBytes" ? k : k] = k === "weightBytes" ? Object.fromEntries(Object.entries(v as object).map(([d, b]) => [HOSTILE[n.i++ % HOSTILE.length]!, b])) : poison(v, n, k);
    return out;
  }
  return value;
}

/** A small seeded generator, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const key = Array.isArray(value) ? Number(k) : k;
      out.push([...prefix, key]);
      if (out.length < 5000) paths(v, [...prefix, key], out);
    }
  }
  return out;
}

const REPLACEMENTS: unknown[] = ["", "x", -1, 0, 1e308, 2 ** 31, null, true, [], {}, [1, 2], "AAAA", { dtype: "float32" }, 1.5];

describe("extension: untrusted outputs", () => {
  for (const [mime, draw] of renderers) {
    const bundle = notebookBundles(mime)[0]!;
    const real = () => clone(bundle.data[mime]) as Record<string, unknown>;

    describe(mime, () => {
      it("a newer version shows the bundle's saved PNG and says why", () => {
        const { doc, host } = newDocument();
        const p = real();
        p["version"] = 2;
        renderOutput(mime, host, p, context(doc, new PlotlyRecorder(), bundle.data["image/png"]), draw);
        assert.match(host.textContent!, /written with version 2 of .*this extension reads version 1/);
        const img = host.querySelector("img")!;
        assert.ok(img.getAttribute("src")!.startsWith("data:image/png;base64,iVBORw0KGgo"));
      });

      it("a newer version without a PNG, or with something else in its place, shows no image", () => {
        for (const png of [undefined, "javascript:alert(1)", "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"]) {
          const { doc, host } = newDocument();
          const p = real();
          p["version"] = 7;
          renderOutput(mime, host, p, context(doc, new PlotlyRecorder(), png), draw);
          assert.strictEqual(host.querySelector("img"), null);
          assert.match(host.querySelector(".jp-pixart-error")!.textContent!, /no image\/png fallback/);
        }
      });

      it("wrong types and broken JSON give a message that names the field", () => {
        const cases: [unknown, RegExp][] = [
          ["{not json", /not valid JSON/],
          [null, /must be a JSON object, got null/],
          [[1, 2], /must be a JSON object, got an array/],
          [42, /must be a JSON object, got number/],
          [{ ...real(), version: "1" }, /\/version must be equal to constant/],
          [{ ...real(), version: 0 }, /\/version must be equal to constant/],
          ['{"version": NaN}', /not valid JSON/],
        ];
        for (const [data, message] of cases) {
          const { doc, host } = newDocument();
          renderOutput(mime, host, data, context(doc), draw);
          const error = host.querySelector(".jp-pixart-error");
          assert.ok(error, `no message for ${JSON.stringify(data)?.slice(0, 60)}`);
          assert.match(error.textContent!, message);
        }
      });

      it("hostile strings in every field are shown as text: no element, handler or URL comes from the data", async () => {
        const { doc, host } = newDocument();
        const plotly = new PlotlyRecorder();
        const p = poison(real());
        const parsed = parsePayload(mime, p);
        await renderOutput(mime, host, p, context(doc, plotly), draw).ready;
        assert.strictEqual(host.querySelectorAll("script, img, svg a, iframe, object, embed").length, 0, host.innerHTML.slice(0, 500));
        for (const node of host.querySelectorAll("*")) {
          for (const attr of node.attributes) {
            assert.ok(!/^on/i.test(attr.name), `${node.tagName} has ${attr.name}`);
            if (/^(href|src|xlink:href|action|formaction|style)$/i.test(attr.name)) assert.ok(!/javascript:|<|>/i.test(attr.value), `${node.tagName} ${attr.name}=${attr.value}`);
          }
        }
        if (parsed.kind === "ok") assert.ok(host.textContent!.includes(HOSTILE[0]!) || host.textContent!.includes(HOSTILE[1]!), "the strings are shown as text");
        // Plotly reads tags in its text: every string handed to it is escaped.
        const texts = JSON.stringify(plotly.plots.map((x) => [x.data, x.layout]));
        assert.ok(!/<(img|script|svg|a)\b/i.test(texts), texts.slice(0, 300));
      });

      it("arrays claiming more elements than a renderer draws are refused before decoding", () => {
        const p = real() as { steps?: { preview: { dims: number[] } }[]; images?: { wordMaps: { dims: number[] } }[] };
        if (mime === MEMORY_MIME) return;
        if (mime === LATENTS_MIME) p.steps!.forEach((s) => (s.preview.dims = [1, 100000, 100000, 3]));
        if (p.images) p.images[0]!.wordMaps.dims = [p.images[0]!.wordMaps.dims[0]!, 100000, 100000];
        const { doc, host, window } = newDocument();
        renderOutput(mime, host, p, context(doc), draw);
        const slider = host.querySelector<HTMLInputElement>("input.jp-pixart-slider");
        slider?.dispatchEvent(new window.Event("input"));
        assert.match(host.textContent!, /more than 67108864 elements/);
      });

      it("survives 150 random damages of a real payload (a message or a drawing, never an exception)", async () => {
        const { doc } = newDocument();
        const random = rng(0x5eed + mime.length);
        const original = real();
        const all = paths(original);
        for (let i = 0; i < 150; i++) {
          const p = clone(original);
          const path = all[Math.floor(random() * all.length)]!;
          let parent: Record<string | number, unknown> = p;
          for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
          const last = path[path.length - 1]!;
          if (random() < 0.2) delete parent[last];
          else parent[last] = REPLACEMENTS[Math.floor(random() * REPLACEMENTS.length)];
          const host = doc.createElement("div");
          let drawn;
          try {
            drawn = renderOutput(mime, host, p, context(doc), draw);
            await drawn.ready;
            drawn.dispose();
          } catch (e) {
            assert.fail(`case ${i} (${path.join(".")}): ${(e as Error).stack}`);
          }
          assert.ok(host.childElementCount > 0, `case ${i}: nothing drawn`);
        }
      });
    });
  }
});
