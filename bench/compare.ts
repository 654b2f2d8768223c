/**
 * pixart-ts vs diffusers/transformers (torch CPU), side by side in one run: `npm run bench:compare`.
 *
 * Two twin worker processes, ours (bench/compare-ours.ts) and theirs (tools/bench/compare_torch.py), load the same
 * full-size-shaped random-weight checkpoints and are fed the same input tensors (safetensors files). For every
 * case each variant gets one warm-up call, then `--reps` timed calls, interleaved (ours, theirs, ours, ...), so
 * both sides see the same machine load. Figures: median and min seconds, peak RSS of the worker during the call
 * (VmHWM reset before it; it includes the weights each side holds), the ratio to diffusers fp32, and how far
 * each output is from diffusers' (max |Δ|; PSNR for images). The load average is recorded around every case.
 *
 *   npm run bench:compare                                   # default groups, writes docs/benchmarks.md
 *   npm run bench:compare -- --only transformer,vae --sizes 256,512 --reps 3
 *   npm run bench:compare -- --only t5                      # T5-XXL shape, ~20 min (9.5 GB of disk, 19 GB of RAM)
 *   npm run bench:compare -- --smoke --out /tmp/b.md        # tiny fixture, seconds (what npm test runs)
 *
 * Groups (--only): gemm, load, transformer, vae, e2e, tiled, t5 (default: all but t5 and tiled). The T5 variants
 * (ours fp32/int8/int4, transformers fp32/bf16) run one after another, each loaded just before its calls and
 * released after them: transformers' fp32 copy alone is 19 GB. Only the models a run's groups use are loaded.
 * Checkpoints are generated on first use by tools/reference/make_fullsize.py into --dir (default .bench/fullsize,
 * git-ignored; ~3 GB for transformer + VAE, +9.5 GB with the T5).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as readline from "readline";
import { parseArgs } from "util";
import { openSafetensors, readTensorData, toTypedArray } from "../src/io/safetensors";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors-writer";
import { TorchGenerator } from "../src/random";
import { repoRoot } from "../test/helpers/paths";
import { completePipelineFolder } from "./fullsize-folder";

const ROOT = repoRoot();

// ───────────────────────────── workers ─────────────────────────────

type Reply = Record<string, unknown> & { ok?: boolean; error?: string; seconds?: number; peak?: number };

/** A line-JSON worker process: one command per line in, one reply per line out. */
class Worker {
  private lines: AsyncIterator<string>;
  private exited: Promise<never>;
  private stderrTail = "";
  private constructor(readonly name: string, private proc: ChildProcessWithoutNullStreams) {
    this.lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    proc.stderr.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-4000);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${name}] ${d}`);
    });
    this.exited = new Promise<never>((_, reject) => proc.once("exit", (code, signal) =>
      reject(new Error(`${name} worker exited (code ${code}, signal ${signal}); its stderr ended with:\n${this.stderrTail}`))));
    this.exited.catch(() => undefined);
  }

  static async start(name: string, cmd: string, args: string[]): Promise<[Worker, Reply]> {
    const env = { ...process.env };
    delete env.OMP_NUM_THREADS; // each side sets its own thread count
    const w = new Worker(name, spawn(cmd, args, { cwd: ROOT, env }));
    return [w, await w.next()];
  }

  private async next(): Promise<Reply> {
    const r = await Promise.race([this.lines.next(), this.exited]);
    if (r.done) throw new Error(`${this.name} worker exited (run with BENCH_VERBOSE=1 to see its stderr)`);
    return JSON.parse(r.value) as Reply;
  }

  async send(cmd: Record<string, unknown>): Promise<Reply> {
    this.proc.stdin.write(JSON.stringify(cmd) + "\n");
    const reply = await this.next();
    if (!reply.ok) throw new Error(`${this.name} ${String(cmd.op)}: ${reply.error}\n${reply.trace ?? ""}`);
    return reply;
  }

  async quit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((resolve) => this.proc.once("exit", resolve));
    this.proc.stdin.write(JSON.stringify({ op: "quit" }) + "\n");
    await gone;
  }
}

// ───────────────────────────── inputs ─────────────────────────────

type Tensors = Record<string, { dims: number[]; data: Float32Array | BigInt64Array }>;

async function writeInputs(file: string, tensors: Tensors): Promise<string> {
  const list: TensorToWrite[] = Object.entries(tensors).map(([name, t]) => ({
    name, shape: t.dims, dtype: t.data instanceof BigInt64Array ? "I64" : "F32",
    data: () => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
  await writeSafetensors(file, list);
  return file;
}

async function readOutput(file: string): Promise<Float32Array> {
  const st = await openSafetensors(file);
  const info = [...st.tensors.values()][0];
  return toTypedArray(info, await readTensorData(info)) as Float32Array;
}

/** A [rows, length] mask with the first `valid[i]` tokens of row i kept. */
function mask(valid: number[], length: number): { dims: number[]; data: BigInt64Array } {
  const data = new BigInt64Array(valid.length * length);
  valid.forEach((n, r) => data.fill(1n, r * length, r * length + n));
  return { dims: [valid.length, length], data };
}

function randn(gen: TorchGenerator, dims: number[]): { dims: number[]; data: Float32Array } {
  return { dims, data: gen.randn(dims) };
}

// ───────────────────────────── cases ─────────────────────────────

interface Variant {
  label: string;
  worker: "ours" | "theirs";
  cmd: Record<string, unknown>;
  /** Output compared with this variant's (label), besides diffusers fp32. */
  compareTo?: string;
  /** In a sequential case: the load command sent just before this variant's calls; its key is released after them. */
  load?: Record<string, unknown> & { key: string };
}

interface Case {
  group: string;
  title: string;
  inputs: string;
  variants: Variant[];
  /** Warm-up call per variant before the timed ones (default true). */
  warmup?: boolean;
  reps?: number;
  /** The output is an image in [0, 1]: also report PSNR. */
  image?: boolean;
  /**
   * One variant at a time (load, warm-up, timed calls, release) instead of interleaved: for models too large to be
   * loaded side by side (T5-XXL: 9.5–19 GB a variant on a 24 GiB machine). Outputs are still compared.
   */
  sequential?: boolean;
}

interface VariantResult {
  label: string;
  seconds: number[];
  peak: number;
  maxDiff?: number;
  psnr?: number;
  vsLabel?: string;
  vsMaxDiff?: number;
  vsPsnr?: number;
}

interface CaseResult {
  group: string;
  title: string;
  variants: VariantResult[];
  loadBefore: string;
  loadAfter: string;
}

const REFERENCE = "diffusers fp32";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function loadAverage(): string {
  return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

function difference(a: Float32Array, b: Float32Array): { maxDiff: number; psnr: number } {
  if (a.length !== b.length) return { maxDiff: NaN, psnr: NaN };
  let max = 0;
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
    se += d * d;
  }
  const mse = se / a.length;
  return { maxDiff: max, psnr: mse === 0 ? Infinity : 10 * Math.log10(1 / mse) };
}

async function runCase(c: Case, workers: Record<"ours" | "theirs", Worker>, reps: number, tmp: string, log: (s: string) => void): Promise<CaseResult> {
  const loadBefore = loadAverage();
  const outFile = (v: Variant) => path.join(tmp, `${c.group}-${v.label.replace(/\W+/g, "_")}.safetensors`);
  const results = new Map<string, VariantResult>(c.variants.map((v) => [v.label, { label: v.label, seconds: [], peak: 0 }]));
  const call = async (v: Variant, output: boolean) => {
    const r = await workers[v.worker].send({ ...v.cmd, inputs: c.inputs, ...(output ? { output: outFile(v) } : {}) });
    return r;
  };
  const n = c.reps ?? reps;
  const timed = async (v: Variant, rep: number) => {
    const r = await call(v, rep === 0);
    const res = results.get(v.label)!;
    res.seconds.push(r.seconds!);
    res.peak = Math.max(res.peak, r.peak ?? 0);
    log(`  ${c.title} · ${v.label}: ${r.seconds!.toFixed(2)} s`);
  };
  if (c.sequential) {
    for (const v of c.variants) {
      if (v.load) await workers[v.worker].send(v.load);
      if (c.warmup !== false) await call(v, false);
      for (let rep = 0; rep < n; rep++) await timed(v, rep);
      if (v.load) await workers[v.worker].send({ op: "release", key: v.load.key });
    }
  } else {
    if (c.warmup !== false) for (const v of c.variants) await call(v, false);
    for (let rep = 0; rep < n; rep++) {
      // Alternate the order every repetition so neither side always runs right after the other's warm caches.
      for (const v of rep % 2 ? [...c.variants].reverse() : c.variants) await timed(v, rep);
    }
  }
  const ref = c.variants.find((v) => v.label === REFERENCE);
  const refOut = ref ? await readOutput(outFile(ref)) : undefined;
  for (const v of c.variants) {
    const res = results.get(v.label)!;
    const out = await readOutput(outFile(v));
    if (refOut && v !== ref) Object.assign(res, difference(out, refOut));
    if (v.compareTo) {
      const other = c.variants.find((x) => x.label === v.compareTo)!;
      const d = difference(out, await readOutput(outFile(other)));
      Object.assign(res, { vsLabel: v.compareTo, vsMaxDiff: d.maxDiff, vsPsnr: d.psnr });
    }
  }
  return { group: c.group, title: c.title, variants: [...results.values()], loadBefore, loadAfter: loadAverage() };
}

// ───────────────────────────── report ─────────────────────────────

export interface BenchReport {
  command: string;
  date: string;
  machine: string;
  threads: number;
  versions: Record<string, string>;
  loads: { label: string; ours: number[]; theirs: number[]; theirsImport: number }[];
  gemm?: { oursGflops: number; theirsGflops: number; shape: string };
  linear?: { size: number; oursSeconds: number; oursGflops: number; theirsSeconds: number; theirsGflops: number }[];
  cases: CaseResult[];
  notes: string[];
}

const fmtS = (s: number) => (s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2));
const fmtB = (b: number) => (b ? `${(b / 2 ** 30).toFixed(2)} GiB` : "—");
const fmtD = (d: number | undefined) => (d === undefined ? "" : Number.isNaN(d) ? "shape differs" : d.toExponential(1));

export function renderReport(r: BenchReport): string {
  const out: string[] = [];
  out.push("# Benchmarks: pixart-ts vs diffusers on the same CPU", "");
  out.push(`Generated by \`${r.command}\` (bench/compare.ts) on ${r.date}. Machine: ${r.machine}. ${r.threads} threads each `
    + "(onnxruntime intra-op threads; torch.set_num_threads). Same full-size-shaped random-weight checkpoints and the same "
    + "input tensors on both sides; one warm-up call per variant, then the timed calls interleaved (the T5 case's note says "
    + "where variants ran one after another instead). Peak RSS is the worker "
    + "process's VmHWM during the call, weights included (ours: memory-mapped file pages; torch: its own copy). "
    + "Read the ratios; absolute times depend on the machine's load, recorded per case.", "");
  out.push(`Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(", ")}.`, "");
  if (r.notes.length) out.push(...r.notes.map((n) => `* ${n}`), "");
  if (r.loads.length) {
    out.push("## Load time (in process)", "", "| component | pixart-ts median (min) | diffusers median (min) | ratio |", "|---|---|---|---|");
    for (const l of r.loads) {
      out.push(`| ${l.label} | ${fmtS(median(l.ours))} s (${fmtS(Math.min(...l.ours))}) | ${fmtS(median(l.theirs))} s (${fmtS(Math.min(...l.theirs))}) | ${(median(l.ours) / median(l.theirs)).toFixed(2)} |`);
    }
    out.push("", `diffusers also needs ${fmtS(r.loads[0].theirsImport)} s to import torch, diffusers and transformers, once per process.`, "");
  }
  const groups = [...new Set(r.cases.map((c) => c.group))];
  for (const g of groups) {
    out.push(`## ${GROUP_TITLES[g] ?? g}`, "");
    for (const c of r.cases.filter((x) => x.group === g)) {
      const ref = c.variants.find((v) => v.label === REFERENCE);
      out.push(`### ${c.title}`, "", `Load average ${c.loadBefore} before, ${c.loadAfter} after.`, "");
      out.push("| variant | median | min | runs | vs diffusers fp32 | peak RSS | max \\|Δ\\| vs diffusers fp32 | other difference |", "|---|---|---|---|---|---|---|---|");
      for (const v of c.variants) {
        const ratio = ref ? (median(v.seconds) / median(ref.seconds)).toFixed(2) : "";
        const psnr = v.psnr !== undefined && c.variants.length && GROUP_IMAGES.has(g) ? `, PSNR ${v.psnr.toFixed(1)} dB` : "";
        const other = v.vsLabel ? `vs ${v.vsLabel}: max \\|Δ\\| ${fmtD(v.vsMaxDiff)}${GROUP_IMAGES.has(g) ? `, PSNR ${v.vsPsnr!.toFixed(1)} dB` : ""}` : "";
        out.push(`| ${v.label} | ${fmtS(median(v.seconds))} s | ${fmtS(Math.min(...v.seconds))} s | ${v.seconds.length} | ${ratio} | ${fmtB(v.peak)} | ${v === ref ? "—" : fmtD(v.maxDiff) + psnr} | ${other} |`);
      }
      out.push("");
    }
  }
  if (r.gemm || r.linear?.length) {
    out.push("## Linear layers vs the machine's GEMM rate", "");
    if (r.gemm) out.push(`One fp32 GEMM ${r.gemm.shape}, best of 5: onnxruntime (MLAS, not prepacked) ${r.gemm.oursGflops.toFixed(0)} GFLOP/s, torch ${r.gemm.theirsGflops.toFixed(0)} GFLOP/s.`, "");
    if (r.linear?.length) {
      out.push("Time and rate of the transformer's Linear layers in one CFG step (onnxruntime profiler: MatMul/Gemm nodes; torch.profiler: aten::linear, FLOPs from aten::addmm/mm):", "");
      out.push("| size | pixart-ts Linear time | GFLOP/s | diffusers Linear time | GFLOP/s |", "|---|---|---|---|---|");
      for (const l of r.linear) out.push(`| ${l.size} px | ${fmtS(l.oursSeconds)} s | ${l.oursGflops.toFixed(0)} | ${fmtS(l.theirsSeconds)} s | ${l.theirsGflops.toFixed(0)} |`);
      out.push("");
    }
  }
  out.push("## Reproducing", "", "```", "npm run bench:compare -- --help", "```", "");
  return out.join("\n");
}

const GROUP_TITLES: Record<string, string> = {
  transformer: "Transformer step (CFG: batch 2, 300-token prompt with 20 and 1 valid tokens)",
  vae: "VAE decode (batch 1)",
  tiled: "Tiled VAE decode (enableTiling / enable_tiling)",
  t5: "T5 encoder (batch 2 × 300 tokens)",
  e2e: "End to end: 20 denoising steps + decode, from prompt embeddings",
};
const GROUP_IMAGES = new Set(["e2e"]);

// ───────────────────────────── main ─────────────────────────────

const HELP = `bench:compare [--only gemm,load,transformer,vae,e2e,tiled,t5] [--sizes 256,512,1024] [--vae-sizes 256,512,1024]
  [--tiled-size 2048] [--reps 3] [--threads 2] [--dir .bench/fullsize] [--out docs/benchmarks.md] [--json file]
  [--no-int8] [--no-autocast] [--prepack] [--no-t5-fp32] [--smoke]`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    only: { type: "string" }, sizes: { type: "string" }, "vae-sizes": { type: "string" }, "tiled-size": { type: "string" },
    reps: { type: "string" }, threads: { type: "string" }, dir: { type: "string" },
    out: { type: "string" }, json: { type: "string" }, "no-int8": { type: "boolean", default: false },
    "no-autocast": { type: "boolean", default: false }, prepack: { type: "boolean", default: false }, "no-t5-fp32": { type: "boolean", default: false },
    smoke: { type: "boolean", default: false }, help: { type: "boolean", default: false },
  } });
  if (values.help) return void console.log(HELP);
  const smoke = values.smoke!;
  const dir = path.resolve(values.dir ?? (smoke ? path.join(ROOT, "test", "fixtures", "tiny-square", "pipeline") : path.join(ROOT, ".bench", "fullsize")));
  const groups = new Set((values.only ?? (smoke ? "gemm,load,transformer,vae,e2e,tiled,t5" : "gemm,load,transformer,vae,e2e")).split(","));
  const reps = Number(values.reps ?? (smoke ? 1 : 3));
  const threads = Number(values.threads ?? (smoke ? 1 : 2));
  const int8 = !values["no-int8"];
  const autocast = !values["no-autocast"];
  const prepack = values.prepack!;
  const sizes = (values.sizes ?? (smoke ? "64" : "256,512")).split(",").map(Number);
  const vaeSizes = (values["vae-sizes"] ?? (smoke ? "48" : "256,512")).split(",").map(Number);
  const tiledSize = Number(values["tiled-size"] ?? (smoke ? 80 : 2048));
  const outFile = values.out ?? path.join(ROOT, "docs", "benchmarks.md");
  const log = (s: string) => console.log(s);

  const need = ["transformer", "vae", ...(groups.has("t5") ? ["text_encoder"] : [])];
  if (!smoke) ensureCheckpoints(dir, need);
  completePipelineFolder(dir);
  const cacheDir = path.join(smoke ? fs.mkdtempSync(path.join(os.tmpdir(), "bench-q-")) : path.join(ROOT, ".bench"), "quantized");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-compare-"));
  const tcfg = JSON.parse(fs.readFileSync(path.join(dir, "transformer", "config.json"), "utf8"));
  const vcfg = JSON.parse(fs.readFileSync(path.join(dir, "vae", "config.json"), "utf8"));
  const caption = tcfg.caption_channels as number;
  const vaeScale = 2 ** (vcfg.block_out_channels.length - 1);
  const seqLen = 300;

  // Both start at once: importing torch, diffusers and transformers is most of a smoke run (~8 s on a quiet machine,
  // 20-35 s at load average 20); our worker's start-up hides behind it.
  const [[ours, oursHello], [theirs, theirsHello]] = await Promise.all([
    Worker.start("pixart-ts", process.execPath, ["--expose-gc", path.join(__dirname, "compare-ours.js"), "--threads", String(threads)]),
    Worker.start("diffusers", path.join(ROOT, ".venv", "bin", "python"), [path.join(ROOT, "tools", "bench", "compare_torch.py"), "--threads", String(threads)]),
  ]);
  const workers = { ours, theirs };
  const report: BenchReport = {
    command: `npm run bench:compare -- ${process.argv.slice(2).join(" ")}`.trim(), date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    machine: machineDescription(), threads,
    versions: { node: process.version, "onnxruntime-node": String(oursHello.onnxruntime ?? ""), torch: String(theirsHello.torch ?? "") },
    loads: [], cases: [], notes: [],
  };
  const gen = new TorchGenerator(0);
  try {
    if (groups.has("gemm")) {
      const shape = smoke ? { m: 64, k: 64, n: 64 } : { m: 2048, k: 1152, n: 4608 };
      const a = await ours.send({ op: "gemm", ...shape });
      const b = await theirs.send({ op: "gemm", ...shape });
      report.gemm = { oursGflops: a.gflops as number, theirsGflops: b.gflops as number, shape: `[${shape.m}, ${shape.k}] × [${shape.k}, ${shape.n}]` };
      log(`GEMM: ours ${report.gemm.oursGflops.toFixed(0)} GFLOP/s, torch ${report.gemm.theirsGflops.toFixed(0)} GFLOP/s`);
    }
    // Only what the chosen groups use is loaded (a T5-only run needs all the memory for the T5).
    const uses = (c: string) => ["load", c, ...(c === "vae" ? ["tiled"] : [])].some((g) => groups.has(g));
    for (const component of ["transformer", "vae"].filter(uses)) {
      const n = groups.has("load") ? reps : 1;
      const entry = { label: component, ours: [] as number[], theirs: [] as number[], theirsImport: Number(theirsHello.import_seconds ?? 0) };
      for (let i = 0; i < n; i++) {
        const last = i === n - 1;
        for (const [w, list] of [[ours, entry.ours], [theirs, entry.theirs]] as const) {
          const r = await w.send({ op: "load", component, dir: path.join(dir, component) });
          list.push(r.seconds!);
          if (!last) await w.send({ op: "release", key: component });
        }
      }
      if (groups.has("load")) report.loads.push(entry);
      log(`load ${component}: ours ${entry.ours.map(fmtS).join(", ")} s; diffusers ${entry.theirs.map(fmtS).join(", ")} s`);
    }
    if (int8 && (groups.has("transformer") || groups.has("e2e"))) {
      const r = await ours.send({ op: "load", component: "transformer", key: "transformer-int8", dir: path.join(dir, "transformer"), quantize: "int8", cacheDir });
      report.notes.push(`pixart-ts int8 transformer: the Linears of the transformer blocks quantized at load (DynamicQuantizeMatMul, docs/quantization.md); load ${fmtS(r.seconds!)} s including quantization on first use (cached afterwards).`);
    }

    if (prepack && groups.has("transformer")) {
      const r = await ours.send({ op: "load", component: "transformer", key: "transformer-prepack", dir: path.join(dir, "transformer"), prepack: true });
      report.notes.push(`pixart-ts fp32 prepacked: the same fp32 transformer with \`prepack: true\` (MLAS packs every MatMul weight into anonymous memory at session creation); load ${fmtS(r.seconds!)} s.`);
    }

    const caseList: Case[] = [];
    if (groups.has("transformer")) {
      for (const size of sizes) {
        const lat = size / vaeScale;
        const inputs = await writeInputs(path.join(tmp, `transformer-${size}.safetensors`), {
          hidden_states: randn(gen, [2, tcfg.in_channels, lat, lat]), encoder_hidden_states: randn(gen, [2, seqLen, caption]),
          encoder_attention_mask: mask([1, 20], seqLen), timestep: { dims: [2], data: BigInt64Array.of(500n, 500n) },
        });
        caseList.push({ group: "transformer", title: `${size} px (${(lat / 2) ** 2} image tokens)`, inputs, variants: [
          { label: "pixart-ts fp32", worker: "ours", cmd: { op: "transformer" } },
          { label: REFERENCE, worker: "theirs", cmd: { op: "transformer" } },
          ...(prepack ? [{ label: "pixart-ts fp32 prepacked", worker: "ours" as const, cmd: { op: "transformer", key: "transformer-prepack" }, compareTo: "pixart-ts fp32" }] : []),
          ...(int8 ? [{ label: "pixart-ts int8", worker: "ours" as const, cmd: { op: "transformer", key: "transformer-int8" }, compareTo: "pixart-ts fp32" }] : []),
          ...(autocast ? [{ label: "diffusers bf16 autocast", worker: "theirs" as const, cmd: { op: "transformer", autocast: true } }] : []),
        ] });
      }
    }
    if (groups.has("vae")) {
      for (const size of vaeSizes) {
        const lat = size / vaeScale;
        const inputs = await writeInputs(path.join(tmp, `vae-${size}.safetensors`), { z: randn(gen, [1, vcfg.latent_channels, lat, lat]) });
        caseList.push({ group: "vae", title: `${size} px`, inputs, variants: [
          { label: "pixart-ts fp32", worker: "ours", cmd: { op: "vae" } },
          { label: REFERENCE, worker: "theirs", cmd: { op: "vae" } },
          ...(autocast ? [{ label: "diffusers bf16 autocast", worker: "theirs" as const, cmd: { op: "vae", autocast: true } }] : []),
        ] });
      }
    }
    for (const c of caseList) {
      report.cases.push(await runCase(c, workers, reps, tmp, log));
      writeReport(report, outFile, values.json); // after every case, so a long run that is stopped keeps what it measured
    }

    if (groups.has("transformer") && groups.has("gemm")) {
      report.linear = [];
      for (const size of sizes.filter((s) => s <= 512)) {
        const inputs = path.join(tmp, `transformer-${size}.safetensors`);
        const a = await ours.send({ op: "profile_linear", inputs, dir: path.join(dir, "transformer") });
        const b = await theirs.send({ op: "profile_linear", inputs });
        report.linear.push({ size, oursSeconds: a.linear_seconds as number, oursGflops: (a.linear_flops as number) / (a.linear_seconds as number) / 1e9,
          theirsSeconds: b.linear_seconds as number, theirsGflops: (b.linear_flops as number) / (b.linear_seconds as number) / 1e9 });
      }
    }

    if (groups.has("e2e")) {
      const size = smoke ? 64 : 256;
      const steps = smoke ? 2 : 20;
      for (const w of [ours, theirs]) await w.send({ op: "load", component: "pipeline", dir });
      if (int8) await ours.send({ op: "load", component: "pipeline", key: "pipeline-int8", dir, quantize: "int8", cacheDir });
      const inputs = await writeInputs(path.join(tmp, "e2e.safetensors"), {
        prompt_embeds: randn(gen, [1, seqLen, caption]), prompt_attention_mask: mask([20], seqLen),
        negative_prompt_embeds: randn(gen, [1, seqLen, caption]), negative_prompt_attention_mask: mask([1], seqLen),
      });
      const cmd = { op: "e2e", steps, size, seed: 0 };
      report.cases.push(await runCase({ group: "e2e", title: `${size} px, ${steps} steps, CFG 4.5, DPM-Solver++ (the checkpoint's scheduler)`, inputs, image: true, variants: [
        { label: "pixart-ts fp32", worker: "ours", cmd },
        { label: REFERENCE, worker: "theirs", cmd },
        ...(int8 ? [{ label: "pixart-ts int8 transformer", worker: "ours" as const, cmd: { ...cmd, key: "pipeline-int8" }, compareTo: "pixart-ts fp32" }] : []),
        ...(autocast ? [{ label: "diffusers bf16 autocast", worker: "theirs" as const, cmd: { ...cmd, autocast: true } }] : []),
      ] }, workers, reps, tmp, log));
      for (const w of [ours, theirs]) await w.send({ op: "release", key: "pipeline" });
      if (int8) await ours.send({ op: "release", key: "pipeline-int8" });
    }

    if (groups.has("tiled")) {
      // Only the VAE stays loaded, so the peak is that of the decode stage.
      for (const key of ["transformer", "transformer-int8"]) await ours.send({ op: "release", key });
      await theirs.send({ op: "release", key: "transformer" });
      const lat = tiledSize / vaeScale;
      const inputs = await writeInputs(path.join(tmp, "tiled.safetensors"), { z: randn(gen, [1, vcfg.latent_channels, lat, lat]) });
      report.cases.push(await runCase({ group: "tiled", title: `${tiledSize} px (tiles of ${vcfg.sample_size} px, overlap 0.25)`, inputs, warmup: false, reps: 1, variants: [
        { label: "pixart-ts fp32", worker: "ours", cmd: { op: "vae", tiled: true } },
        { label: REFERENCE, worker: "theirs", cmd: { op: "vae", tiled: true } },
      ] }, workers, 1, tmp, log));
    }

    if (groups.has("t5")) await t5Cases(dir, workers, report, { reps, tmp, cacheDir, seqLen, fp32: !values["no-t5-fp32"], log });
  } finally {
    await Promise.all([ours.quit(), theirs.quit()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  writeReport(report, outFile, values.json);
  log(`wrote ${outFile}`);
}

function writeReport(report: BenchReport, outFile: string, json: string | undefined): void {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, renderReport(report));
  if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2));
}

async function t5Cases(dir: string, workers: Record<"ours" | "theirs", Worker>, report: BenchReport,
  o: { reps: number; tmp: string; cacheDir: string; seqLen: number; fp32: boolean; log: (s: string) => void }): Promise<void> {
  const { ours, theirs } = workers;
  const te = path.join(dir, "text_encoder");
  const cfg = JSON.parse(fs.readFileSync(path.join(te, "config.json"), "utf8"));
  const ids = new BigInt64Array(2 * o.seqLen);
  const m = mask([20, 1], o.seqLen);
  for (let i = 0; i < ids.length; i++) ids[i] = m.data[i] ? BigInt(2 + ((i * 7919) % (cfg.vocab_size - 2))) : 0n;
  const inputs = await writeInputs(path.join(o.tmp, "t5.safetensors"), { input_ids: { dims: [2, o.seqLen], data: ids }, attention_mask: m });
  // One variant loaded at a time (sequential case): ours fp32 maps the 9.5 GB bf16 file, transformers' copies are
  // 9.5 GB (bf16) and 19 GB (fp32) of their own, and no two of those fit in 24 GiB beside each other.
  const variants: Variant[] = [];
  for (const q of [undefined, "int8", "int4"] as const) {
    const key = `t5-${q ?? "fp32"}`;
    const load = { op: "load", component: "text_encoder", key, dir: te, ...(q ? { quantize: q, cacheDir: o.cacheDir } : {}) };
    variants.push({ label: `pixart-ts ${q ?? "fp32"}`, worker: "ours", cmd: { op: "t5", key }, load, ...(q ? { compareTo: "pixart-ts fp32" } : {}) });
  }
  if (o.fp32) {
    const load = { op: "load", component: "text_encoder", key: "t5-fp32", dir: te, dtype: "float32" };
    variants.push({ label: REFERENCE, worker: "theirs", cmd: { op: "t5", key: "t5-fp32" }, load });
  }
  const load = { op: "load", component: "text_encoder", key: "t5-bf16", dir: te, dtype: "bfloat16" };
  variants.push({ label: "transformers bf16", worker: "theirs", cmd: { op: "t5", key: "t5-bf16" }, load, compareTo: "pixart-ts fp32" });
  report.cases.push(await runCase({ group: "t5", title: `${cfg.num_layers} layers, d_model ${cfg.d_model}`, inputs, variants, sequential: true }, workers, o.reps, o.tmp, o.log));
  report.notes.push("T5: the variants ran one after another (each loaded, warmed up, timed, released), not interleaved: no two fit in memory side by side. "
    + (o.fp32 ? "\"diffusers fp32\" there is transformers' T5EncoderModel in fp32, what diffusers' pipeline runs by default." : "transformers fp32 was not run (--no-t5-fp32): \"vs diffusers fp32\" is empty in that table."));
}

function ensureCheckpoints(dir: string, components: string[]): void {
  const missing = components.filter((c) => !fs.existsSync(path.join(dir, c, "config.json")));
  if (!missing.length) return;
  const python = path.join(ROOT, ".venv", "bin", "python");
  for (const c of missing) {
    console.log(`generating ${path.join(dir, c)} (random weights, full-size shapes; never committed)…`);
    const dtype = c === "text_encoder" ? "bfloat16" : "float32";
    const r = spawnSync(python, [path.join(ROOT, "tools", "reference", "make_fullsize.py"), dir, "--components", c, "--dtype", dtype], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`make_fullsize.py failed for ${c}`);
  }
}

function machineDescription(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const flags = fs.readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1].split(" ") ?? [];
  const simd = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16"].filter((f) => flags.includes(f));
  return `${cpu}, ${os.cpus().length} logical CPUs (${simd.join(", ") || "no AVX2"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}`;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
