/**
 * End to end in a real browser: a private `jupyter lab` with our kernel and the prebuilt extension, headless Debian
 * chromium through playwright-core. The executed tutorials render with the extension (latents: a drawn canvas and
 * a scrubber that changes the frame; attention: a plotly plot and a word selector that switches maps; memory: a
 * plotly plot), the memory panel follows a live kernel (updates while a cell runs, deletes a component, flush
 * lowers RSS), and a notebook of hostile outputs renders inert (no script ran, no request made). No console errors.
 * Screenshots go to test-output/browser/. Skips only when chromium is missing.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import type { Page } from "playwright-core";
import { repoRoot } from "../helpers/paths";
import { buildRoot } from "../kernel/kernel-client";
import { writeHostileNotebook, PWNED_FLAG } from "./hostile";
import { activeNotebook, launchBrowser, missingBrowser, openNotebook, screenshot, startLab, until, type BrowserSession, type LabServer } from "./lab";

const PANEL = "#pixart-ts-memory-panel";

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side functions: the root tsconfig has no DOM types. */
/** Page side: whether a canvas holds a picture (more than two colours among its opaque pixels). */
const canvasIsDrawn = (c: any): boolean => {
  const ctx = c.getContext("2d");
  if (!ctx || c.width === 0 || c.height === 0) return false;
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set<number>();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
    if (seen.size > 2) return true;
  }
  return false;
};
/** Page side: a hash of a canvas's pixels. */
const canvasHash = (c: any): number => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
  return h;
};

function liveNotebook(): object {
  const code = (source: string) => ({ cell_type: "code", execution_count: null, id: `c${Math.random().toString(36).slice(2, 8)}`, metadata: {}, outputs: [], source });
  return {
    nbformat: 4, nbformat_minor: 5,
    metadata: { kernelspec: { name: "pixart-ts", display_name: "TypeScript (pixart-ts)", language: "typescript" } },
    cells: [
      code(`import { PixArtSigmaPipeline } from ${JSON.stringify(path.join(buildRoot, "src", "index"))};\n` +
        `const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(path.join(repoRoot(), "models", "tiny-shapes"))}, { progress: false });`),
      code("for (let i = 0; i < 8; i++) {\n  await pipe.call({ prompt: \"a red circle\", numInferenceSteps: 4, seed: i, outputType: \"latent\", progress: false,\n    useResolutionBinning: false });\n" +
        "  await new Promise((r) => setTimeout(r, 500));\n}"),
      code("let junk: Float64Array | null = new Float64Array(48 * 1024 * 1024).fill(1);"),
      code("junk = null;"),
    ],
  };
}

describe("JupyterLab end to end (headless chromium)", function () {
  this.timeout(600_000);
  let lab: LabServer;
  let b: BrowserSession;

  before(async function () {
    const missing = missingBrowser();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const scratch = fs.mkdtempSync(path.join(require("os").tmpdir(), "pixart-browser-nb-"));
    fs.writeFileSync(path.join(scratch, "live.ipynb"), JSON.stringify(liveNotebook()));
    const counts = writeHostileNotebook(path.join(scratch, "hostile.ipynb"));
    for (const [what, n] of Object.entries(counts)) assert.ok(n > 0, `no hostile string made it into ${what}`);
    lab = await startLab({
      "01-quickstart.ipynb": "notebooks/01-quickstart.ipynb",
      "03-attention-maps.ipynb": "notebooks/03-attention-maps.ipynb",
      "04-memory-profiling.ipynb": "notebooks/04-memory-profiling.ipynb",
      "live.ipynb": path.join(scratch, "live.ipynb"),
      "hostile.ipynb": path.join(scratch, "hostile.ipynb"),
    });
    fs.rmSync(scratch, { recursive: true, force: true });
    b = await launchBrowser();
  });

  after(async () => {
    await b?.close();
    await lab?.stop();
  });

  afterEach(async function () {
    const errors = b ? b.errors.splice(0) : [];
    if (this.currentTest?.state === "failed" && b) {
      const title = (this.currentTest.title.split(":")[0] ?? "test").replace(/\W+/g, "-");
      console.log(`      screenshot: ${await screenshot(b.page, `failed-${title}`)}`);
      console.log(`      memory panel: ${await b.page.locator(PANEL).innerText({ timeout: 2000 }).catch(() => "(none)")}`);
      console.log(`      server log (end):\n${lab.log().slice(-3000)}`);
    }
    assert.deepStrictEqual(errors, [], "console errors in the page");
  });

  /** The root element each renderer draws into. */
  const roots: Record<string, string> = {
    "application/vnd.pixart.latents+json": ".jp-pixart-latents",
    "application/vnd.pixart.attention+json": ".jp-pixart-attention",
    "application/vnd.pixart.memory+json": ".jp-pixart-memory",
  };
  const out = (mime: string) => `${activeNotebook} .jp-OutputArea-output ${roots[mime]}`;

  it("latents: the frame canvas is drawn and the step scrubber changes it", async () => {
    const { page } = b;
    await openNotebook(page, lab, "01-quickstart.ipynb");
    const frame = page.locator(`${out("application/vnd.pixart.latents+json")} canvas.jp-pixart-frame`).first();
    await frame.waitFor({ timeout: 60000 });
    await frame.scrollIntoViewIfNeeded();
    await until(() => frame.evaluate(canvasIsDrawn), "the latent frame canvas is drawn");
    const before = { step: await frame.getAttribute("data-step"), hash: await frame.evaluate(canvasHash) };
    const slider = page.locator(`${out("application/vnd.pixart.latents+json")} input.jp-pixart-slider`).first();
    await slider.scrollIntoViewIfNeeded();
    await slider.focus();
    await page.keyboard.press("Home");
    const after = { step: await frame.getAttribute("data-step"), hash: await frame.evaluate(canvasHash) };
    assert.notStrictEqual(after.step, before.step, "the scrubber did not change the step");
    assert.notStrictEqual(after.hash, before.hash, "the scrubber did not change the frame's pixels");
    await screenshot(page, "latents", out("application/vnd.pixart.latents+json"));
  });

  it("memory report: a plotly plot is drawn", async () => {
    const { page } = b;
    await openNotebook(page, lab, "04-memory-profiling.ipynb");
    const plot = page.locator(`${out("application/vnd.pixart.memory+json")} .js-plotly-plot`).first();
    await plot.waitFor({ timeout: 90000 });
    assert.ok((await plot.locator(".scatterlayer .trace, .barlayer .trace").count()) > 0, "the plot has no traces");
    await screenshot(page, "memory-report", out("application/vnd.pixart.memory+json"));
  });

  it("attention: the heat map is drawn, the word selector switches maps, a plotly plot is present", async () => {
    const { page } = b;
    await openNotebook(page, lab, "03-attention-maps.ipynb");
    const root = out("application/vnd.pixart.attention+json");
    const heat = page.locator(`${root} canvas.jp-pixart-heat`).first();
    await heat.waitFor({ timeout: 60000 });
    await heat.scrollIntoViewIfNeeded();
    await until(() => heat.evaluate(canvasIsDrawn), "the heat map canvas is drawn");
    const words = page.locator(`${root} .jp-pixart-word`);
    assert.ok((await words.count()) >= 2, "fewer than two words to choose from");
    const first = { word: await heat.getAttribute("data-word"), hash: await heat.evaluate(canvasHash) };
    await words.nth(1).click();
    const second = { word: await heat.getAttribute("data-word"), hash: await heat.evaluate(canvasHash) };
    assert.notStrictEqual(second.word, first.word, "the word selector did not switch the word");
    assert.notStrictEqual(second.hash, first.hash, "the word selector did not switch the map");
    await page.locator(`${root} .js-plotly-plot`).first().waitFor({ timeout: 90000 });
    await screenshot(page, "attention", root);
  });

  it("memory panel: follows the kernel, updates while a cell runs, deletes a component, flush lowers RSS", async () => {
    const { page } = b;
    await openNotebook(page, lab, "live.ipynb");
    await page.locator(`.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="pixart-ts-memory-panel"]`).click();
    const panel = page.locator(PANEL);
    await page.waitForFunction(`document.querySelector(${JSON.stringify(PANEL)})?.dataset.seq > 0`, undefined, { timeout: 90000 });
    await runCell(page, 0);
    await waitIdle(page, 0);
    await panel.locator('[data-component="transformer"][data-loaded="true"]').waitFor({ timeout: 30000 });

    // Two different snapshots, both sent while cell 1 runs.
    await runCell(page, 1);
    const seqWhileBusy = async () => Number(await page.waitForFunction(
      `(() => { const p = document.querySelector(${JSON.stringify(PANEL)}); return p.dataset.busy === "true" && Number(p.dataset.seq); })()`,
      undefined, { timeout: 60000 }).then((h) => h.jsonValue()));
    const s1 = await seqWhileBusy();
    await page.waitForFunction(`Number(document.querySelector(${JSON.stringify(PANEL)}).dataset.seq) > ${s1}`, undefined, { timeout: 60000 });
    const s2 = Number(await panel.getAttribute("data-seq"));
    const busyAfter = await panel.getAttribute("data-busy");
    const stillRunning = await page.locator(`${activeNotebook} .jp-Cell`).nth(1).locator(".jp-InputArea-prompt").innerText();
    assert.ok(busyAfter === "true" && stillRunning.includes("*"), `the panel updated (${s1} → ${s2}) but not while the cell ran`);
    await screenshot(page, "memory-panel-running", PANEL);
    await waitIdle(page, 1);
    assert.strictEqual(await page.locator(`${activeNotebook} .jp-Cell`).nth(1).locator(".jp-OutputArea-output").count(), 0, "cell 1 printed something");

    await panel.locator('[data-component="transformer"] .jp-pixart-memory-delete:not([disabled])').click();
    await panel.locator('[data-component="transformer"][data-loaded="false"]').waitFor({ timeout: 30000 });

    // Cell 2 allocates 384 MiB and keeps it; cell 3 drops it and the flush request queued right behind it collects
    // it (before V8's memory reducer would, some seconds after the heap stops growing).
    const rssIdle = Number(await panel.getAttribute("data-rss"));
    await runCell(page, 2);
    await waitIdle(page, 2);
    await page.waitForFunction(`Number(document.querySelector(${JSON.stringify(PANEL)}).dataset.rss) > ${rssIdle + 256 * 1024 * 1024}`,
      undefined, { timeout: 60000 });
    const rssBefore = Number(await panel.getAttribute("data-rss"));
    await runCell(page, 3);
    await panel.locator(".jp-pixart-memory-flush").click();
    await waitIdle(page, 3);
    await page.waitForFunction(`Number(document.querySelector(${JSON.stringify(PANEL)}).dataset.rss) < ${rssBefore - 256 * 1024 * 1024}`,
      undefined, { timeout: 60000 });
    assert.match(await panel.locator(".jp-pixart-memory-status").innerText(), /flush: done/);
    await screenshot(page, "memory-panel", PANEL);
  });

  it("hostile outputs render inert: no script runs, no request is made", async () => {
    const { page } = b;
    const seen = b.requests.length;
    await openNotebook(page, lab, "hostile.ipynb");
    await page.locator(`${activeNotebook} .jp-OutputArea-output`).nth(5).waitFor({ timeout: 60000 });
    await page.waitForTimeout(3000); // images, lazy plotly and any handler get their chance
    // Interact with everything the renderers made: hover and click every button, move every slider.
    const touched = await page.$$eval(`${activeNotebook} .jp-OutputArea-output button, ${activeNotebook} .jp-OutputArea-output input`, (els: any[]) => {
      for (const e of els) {
        e.dispatchEvent(new (globalThis as any).MouseEvent("mouseover", { bubbles: true }));
        if (e.tagName === "INPUT") {
          e.value = e.min ?? "0";
          e.dispatchEvent(new (globalThis as any).Event("input", { bubbles: true }));
        } else {
          e.click();
        }
      }
      return els.length;
    });
    assert.ok(touched > 0, "the hostile outputs drew no controls at all");
    await page.waitForTimeout(1000);
    await screenshot(page, "hostile");
    assert.strictEqual(await page.evaluate(`typeof window.${PWNED_FLAG}`), "undefined", "a hostile string ran as script");
    const bad = b.requests.slice(seen).filter((u) => /pwned|\/x($|\?)|^javascript:|^data:text\/html/.test(u));
    assert.deepStrictEqual(bad, [], "a hostile string made the page request something");
    assert.ok((await page.locator(`${activeNotebook} script, ${activeNotebook} iframe, ${activeNotebook} .jp-OutputArea-output img[onerror]`).count()) === 0,
      "hostile markup became elements");
  });
});

async function runCell(page: Page, index: number): Promise<void> {
  const cell = page.locator(`${activeNotebook} .jp-Cell`).nth(index);
  await cell.locator(".jp-InputArea-editor").click();
  await page.keyboard.press("Control+Enter");
}

async function waitIdle(page: Page, index: number): Promise<void> {
  const prompt = page.locator(`${activeNotebook} .jp-Cell`).nth(index).locator(".jp-InputArea-prompt");
  await page.waitForFunction(([el]) => /\[\d+\]/.test((el as { textContent: string }).textContent), [await prompt.elementHandle()], { timeout: 120000 });
  const error = await page.locator(`${activeNotebook} .jp-Cell`).nth(index).locator('[data-mime-type="application/vnd.jupyter.stderr"]').count();
  assert.strictEqual(error, 0, `cell ${index} failed: ${await page.locator(`${activeNotebook} .jp-Cell`).nth(index).innerText()}`);
}
