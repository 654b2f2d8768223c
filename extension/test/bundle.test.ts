/**
 * The prebuilt labextension (`npm run build` here): JupyterLab loads its remoteEntry and the chunks of the
 * renderers; plotly is a chunk of its own, fetched on the first plot. Budget: everything but plotly < 300 KB.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";

const built = path.resolve(__dirname, "..", "..", "..", "labextension");
export const MAIN_BUNDLE_BUDGET = 300 * 1000;

describe("extension: prebuilt labextension", function () {
  before(function () {
    if (!fs.existsSync(path.join(built, "package.json"))) this.skip(); // not built: `npm run build` in extension/ (CI builds it)
  });

  function chunks(): { name: string; bytes: number; text: string }[] {
    const dir = path.join(built, "static");
    return fs.readdirSync(dir).filter((f) => f.endsWith(".js")).map((name) => {
      const text = fs.readFileSync(path.join(dir, name), "utf8");
      return { name, bytes: Buffer.byteLength(text), text };
    });
  }
  // plotly fires this event name; no other code of the bundle mentions it.
  const isPlotly = (text: string) => text.includes("plotly_relayout");

  it("declares the mime renderers and the plugin entry in its package.json for JupyterLab", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(built, "package.json"), "utf8")) as { jupyterlab: { _build: Record<string, string> } };
    assert.match(pkg.jupyterlab._build["load"]!, /^static\/remoteEntry\.[0-9a-f]+\.js$/);
    assert.ok(fs.existsSync(path.join(built, pkg.jupyterlab._build["load"]!)));
    assert.strictEqual(pkg.jupyterlab._build["mimeExtension"], "./mimeExtension");
    assert.strictEqual(pkg.jupyterlab._build["extension"], "./extension");
  });

  it("keeps plotly in a chunk of its own and everything else under 300 KB", () => {
    const all = chunks();
    const plotly = all.filter((c) => isPlotly(c.text));
    assert.strictEqual(plotly.length, 1, `plotly chunks: ${plotly.map((c) => c.name)}`);
    const rest = all.filter((c) => !isPlotly(c.text));
    const bytes = rest.reduce((a, c) => a + c.bytes, 0);
    console.log(`      main bundle ${bytes} B in ${rest.length} files (${rest.map((c) => `${c.name} ${c.bytes}`).join(", ")}); plotly chunk ${plotly[0]!.bytes} B`);
    assert.ok(bytes < MAIN_BUNDLE_BUDGET, `${bytes} B of non-plotly JavaScript`);
  });

  it("loads the plotly chunk only through a dynamic import", () => {
    const all = chunks();
    const plotly = all.find((c) => isPlotly(c.text))!;
    const id = plotly.name.split(".")[0]!;
    const entry = all.find((c) => c.name.startsWith("remoteEntry."))!;
    // The entry knows the chunk (to fetch it on demand) but does not contain plotly's code.
    assert.ok(entry.text.includes(id), "remoteEntry maps the plotly chunk");
    assert.ok(!isPlotly(entry.text));
  });
});
