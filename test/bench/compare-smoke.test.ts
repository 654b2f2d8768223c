/**
 * The side-by-side benchmark's harness (`npm run bench:compare -- --smoke`) on the tiny-square fixture: both
 * workers (ours, bench/compare-ours.ts; diffusers/transformers, tools/bench/compare_torch.py) start and answer
 * every command, get the same inputs, their fp32 outputs agree within the parity tolerances of the fixture's
 * reference.json, and every group's table is written with every column. No timing is asserted.
 *
 * Most of its time is the Python worker importing torch, diffusers and transformers (~10 s on a quiet machine;
 * the whole run ~45-55 s at load average 18-20 on the shared 2-core development machine).
 */
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { BenchReport } from "../../bench/compare";
import { fixturesDir, repoRoot } from "../helpers/paths";

const GROUPS = ["e2e", "t5", "tiled", "transformer", "vae"];
/** The markdown table columns of every case (bench/compare.ts renderReport). */
const COLUMNS = ["variant", "median", "min", "runs", "vs diffusers fp32", "peak RSS", "max \\|Δ\\| vs diffusers fp32", "other difference"];

describe("bench:compare --smoke (the harness on the tiny fixture)", function () {
  this.timeout(600_000);
  let report: BenchReport;
  let markdown: string;
  let tmp: string;
  const tolerances = (JSON.parse(fs.readFileSync(path.join(fixturesDir, "tiny-square", "reference.json"), "utf8")) as
    { tolerances: Record<string, { max_abs: number }> }).tolerances;
  const tolerance = (key: string) => {
    assert.ok(tolerances[key], `reference.json has no tolerance for ${key}`);
    return tolerances[key].max_abs;
  };

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-smoke-"));
    const out = path.join(tmp, "benchmarks.md");
    const json = path.join(tmp, "report.json");
    const r = spawnSync(process.execPath, [path.join(repoRoot(), "dist", "bench", "compare.js"), "--smoke", "--out", out, "--json", json], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, `bench:compare --smoke failed:\n${r.stdout}\n${r.stderr}`);
    report = JSON.parse(fs.readFileSync(json, "utf8"));
    markdown = fs.readFileSync(out, "utf8");
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  const variant = (group: string, label: string) => {
    const c = report.cases.find((x) => x.group === group);
    assert.ok(c, `no ${group} case in the report`);
    const v = c.variants.find((x) => x.label === label);
    assert.ok(v, `${group}: no variant "${label}" (have ${c.variants.map((x) => x.label).join(", ")})`);
    return v;
  };

  it("both workers answer: versions, load times, GEMM and Linear rates from each side", () => {
    assert.match(report.versions["onnxruntime-node"] ?? "", /^\d+\.\d+/);
    assert.match(report.versions.torch ?? "", /^\d+\.\d+/);
    assert.deepStrictEqual(report.loads.map((l) => l.label), ["transformer", "vae"]);
    for (const l of report.loads) assert.ok(l.ours[0]! > 0 && l.theirs[0]! > 0 && l.theirsImport > 0, JSON.stringify(l));
    assert.ok(report.gemm && report.gemm.oursGflops > 0 && report.gemm.theirsGflops > 0, JSON.stringify(report.gemm));
    assert.ok(report.linear?.length && report.linear.every((l) => l.oursGflops > 0 && l.theirsGflops > 0), "Linear GFLOP/s from both profilers");
  });

  it("runs every group, each variant timed with a peak RSS", () => {
    assert.deepStrictEqual([...new Set(report.cases.map((c) => c.group))].sort(), GROUPS);
    for (const c of report.cases) {
      assert.ok(c.variants.some((v) => v.label.startsWith("pixart-ts")) && c.variants.some((v) => !v.label.startsWith("pixart-ts")), c.title);
      for (const v of c.variants) {
        assert.ok(v.seconds.length >= 1 && v.seconds.every((s) => s > 0), `${c.title} ${v.label}: ${v.seconds}`);
        assert.ok(v.peak > 0, `${c.title} ${v.label}: no peak RSS`);
      }
    }
  });

  it("feeds both engines the same tensors: our fp32 outputs agree with diffusers/transformers fp32 within the parity tolerances", () => {
    const cases: [string, string][] = [["transformer", "transformer.output"], ["vae", "vae.sample"], ["tiled", "vae.sample"],
      ["t5", "t5.last_hidden_state"], ["e2e", "pipeline.image"]];
    for (const [group, key] of cases) {
      const v = variant(group, "pixart-ts fp32");
      assert.ok(v.maxDiff !== undefined && v.maxDiff <= tolerance(key), `${group}: max |Δ| ${v.maxDiff}, tolerance ${tolerance(key)} (${key})`);
    }
  });

  it("measures the quantized and bf16 variants against fp32 (a difference, finite, not zero)", () => {
    for (const [group, label] of [["transformer", "pixart-ts int8"], ["e2e", "pixart-ts int8 transformer"], ["t5", "pixart-ts int8"], ["t5", "pixart-ts int4"]]) {
      const v = variant(group!, label!);
      assert.strictEqual(v.vsLabel, "pixart-ts fp32");
      assert.ok(v.vsMaxDiff! > 0 && Number.isFinite(v.vsMaxDiff), `${group} ${label} vs fp32: ${v.vsMaxDiff}`);
    }
    const img = variant("e2e", "pixart-ts int8 transformer");
    assert.ok(Number.isFinite(img.vsPsnr) && img.vsPsnr! > 30, `int8 image PSNR ${img.vsPsnr}`);
    for (const group of ["transformer", "vae", "e2e"]) {
      const v = variant(group, "diffusers bf16 autocast");
      assert.ok(v.maxDiff! > 0 && Number.isFinite(v.maxDiff), `${group} bf16 autocast vs fp32: ${v.maxDiff}`);
    }
  });

  it("writes the markdown report: the machine, every group's table with every column filled, the load average per case", () => {
    assert.match(markdown, /Machine: .*logical CPUs/);
    for (const heading of ["## Load time", "## Transformer step", "## VAE decode", "## Tiled VAE decode", "## T5 encoder", "## End to end", "## Linear layers"]) {
      assert.ok(markdown.includes(heading), `missing "${heading}"`);
    }
    const lines = markdown.split("\n");
    const header = `| ${COLUMNS.join(" | ")} |`;
    const tables = lines.flatMap((l, i) => (l === header ? [i] : []));
    assert.strictEqual(tables.length, report.cases.length, "one table per case");
    for (const [k, at] of tables.entries()) {
      const c = report.cases[k]!;
      const rows = lines.slice(at + 2, at + 2 + c.variants.length);
      for (const [j, row] of rows.entries()) {
        const cells = row.split(/(?<!\\)\|/).slice(1, -1).map((x) => x.trim());
        assert.strictEqual(cells.length, COLUMNS.length, `${c.title}: ${row}`);
        assert.strictEqual(cells[0], c.variants[j]!.label);
        assert.match(cells[1]!, /^[\d.]+ s$/, `${c.title} median: ${row}`);
        assert.match(cells[2]!, /^[\d.]+ s$/, `${c.title} min: ${row}`);
        assert.match(cells[3]!, /^\d+$/, `${c.title} runs: ${row}`);
        assert.match(cells[4]!, /^[\d.]+$/, `${c.title} ratio: ${row}`);
        assert.match(cells[5]!, /^[\d.]+ GiB$/, `${c.title} peak: ${row}`);
        assert.match(cells[6]!, c.variants[j]!.label === "diffusers fp32" ? /^—$/ : /^\d\.\de[-+]\d+/, `${c.title} difference: ${row}`);
      }
    }
    assert.strictEqual(lines.filter((l) => /^Load average [\d.]+ [\d.]+ [\d.]+ before, [\d.]+ [\d.]+ [\d.]+ after\.$/.test(l)).length, report.cases.length);
    assert.match(markdown, /\| 64 px \| [\d.]+ s \| \d+ \| [\d.]+ s \| \d+ \|/, "the Linear layers table row");
  });
});
