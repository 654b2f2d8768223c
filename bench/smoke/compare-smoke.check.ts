/**
 * The side-by-side benchmark's harness (bench/compare.ts --smoke) on the tiny-square fixture: both workers start,
 * get the same inputs, and their outputs agree; every group of the table is written. No timing is asserted.
 *
 * Not part of `npm test` yet: on the shared 2-core machine (load average ~25) one smoke run took over 10 minutes
 * (torch's import alone ~45 s). Run it by hand: npm run build && npx mocha --no-config dist/bench/smoke/compare-smoke.check.js
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { BenchReport } from "../compare";
import { repoRoot } from "../../test/helpers/paths";

describe("bench:compare harness (smoke run on the tiny fixture)", function () {
  this.timeout(900_000);
  let report: BenchReport;
  let markdown: string;
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-smoke-"));
    const out = path.join(tmp, "benchmarks.md");
    const json = path.join(tmp, "report.json");
    const r = spawnSync(process.execPath, [path.join(repoRoot(), "dist", "bench", "compare.js"), "--smoke", "--only", "gemm,transformer,vae,e2e", "--no-autocast", "--out", out, "--json", json], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, `bench:compare --smoke failed:\n${r.stdout}\n${r.stderr}`);
    report = JSON.parse(fs.readFileSync(json, "utf8"));
    markdown = fs.readFileSync(out, "utf8");
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  const byLabel = (group: string, label: string) => {
    const c = report.cases.find((x) => x.group === group);
    assert.ok(c, `no ${group} case in the report`);
    const v = c.variants.find((x) => x.label === label);
    assert.ok(v, `${group}: no variant "${label}" (have ${c.variants.map((x) => x.label).join(", ")})`);
    return v;
  };

  it("runs every group, each variant timed once with a peak RSS", () => {
    // The T5 and tiled groups and bf16 autocast take minutes even on the tiny fixture on a loaded machine: not here.
    assert.deepStrictEqual([...new Set(report.cases.map((c) => c.group))].sort(), ["e2e", "transformer", "vae"]);
    for (const c of report.cases) {
      for (const v of c.variants) {
        assert.ok(v.seconds.length >= 1 && v.seconds.every((s) => s > 0), `${c.title} ${v.label}: ${v.seconds}`);
        assert.ok(v.peak > 0, `${c.title} ${v.label}: no peak RSS`);
      }
    }
    assert.ok(report.gemm && report.gemm.oursGflops > 0 && report.gemm.theirsGflops > 0);
    assert.ok(report.linear?.length && report.linear.every((l) => l.oursGflops > 0 && l.theirsGflops > 0), "Linear GFLOP/s from both profilers");
  });

  it("feeds both engines the same tensors: fp32 outputs agree with diffusers/transformers", () => {
    for (const group of ["transformer", "vae"]) {
      const v = byLabel(group, "pixart-ts fp32");
      assert.ok(v.maxDiff !== undefined && v.maxDiff <= 1e-4, `${group}: max |Δ| ${v.maxDiff}`);
    }
    const e2e = byLabel("e2e", "pixart-ts fp32");
    assert.ok(e2e.maxDiff !== undefined && e2e.maxDiff <= 1 / 255, `e2e image: max |Δ| ${e2e.maxDiff}`);
  });

  it("measures the int8 variants against our fp32 output (image difference as PSNR)", () => {
    const t = byLabel("transformer", "pixart-ts int8");
    assert.strictEqual(t.vsLabel, "pixart-ts fp32");
    assert.ok(t.vsMaxDiff! > 0 && Number.isFinite(t.vsMaxDiff), `int8 vs fp32: ${t.vsMaxDiff}`);
    const img = byLabel("e2e", "pixart-ts int8 transformer");
    assert.ok(Number.isFinite(img.vsPsnr) && img.vsPsnr! > 10, `int8 image PSNR ${img.vsPsnr}`);
  });

  it("writes the markdown table with the machine, the load average and every group", () => {
    for (const heading of ["## Transformer step", "## VAE decode", "## End to end", "## Linear layers"]) {
      assert.ok(markdown.includes(heading), `missing "${heading}"`);
    }
    assert.match(markdown, /Machine: .*logical CPUs/);
    assert.match(markdown, /Load average [\d.]+ [\d.]+ [\d.]+ before/);
    assert.match(markdown, /\| pixart-ts fp32 \| [\d.]+ s \| [\d.]+ s \| 1 \| [\d.]+ \|/);
  });
});
