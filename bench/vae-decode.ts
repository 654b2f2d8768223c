/**
 * VAE decode: what each call costs besides arithmetic, and where its time goes. Loads the decoder once per variant
 * (`--variants`: the VAE's default allocation, onnxruntime's CPU memory arena on without memory patterns; `off`, no
 * arena, memory patterns on, as before; `pattern`, arena and patterns; each in its own worker thread, as models run by default), then decodes
 * the `--sizes` sequence with the variants interleaved call by call, so machine load hits them alike. Per call: wall,
 * user and system CPU time, minor page faults, RSS after the call and the call's peak RSS (VmHWM reset before it).
 * After each variant is released: RSS again (what release() gave back).
 *
 * With `--profile` the sessions run on this thread with onnxruntime's profiler, and each variant's per-operator
 * kernel time (median over the calls of each size) is printed.
 *
 *   .venv/bin/python tools/reference/make_fullsize.py .bench/fullsize --components vae
 *   npm run build && node --expose-gc dist/bench/vae-decode.js [--dir .bench/fullsize/vae] [--sizes 256,512,512]
 *        [--variants default,off,pattern] [--threads 2] [--profile]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes, processMemory, resetPeak } from "../src/memory/probes";
import { AutoencoderKL } from "../src/models/autoencoder-kl";
import type { Tensor } from "../src/models/model";
import type { SessionConfig } from "../src/onnx/session";
import { TorchGenerator } from "../src/random";

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args: { op_name?: string; output_type_shape?: Record<string, number[]>[] };
}

/** Kernel milliseconds per operator type for each run in a trace, with the run's output width in pixels. */
function kernelTimes(file: string): { width: number; ms: Map<string, number> }[] {
  const events = JSON.parse(fs.readFileSync(file, "utf8")) as TraceEvent[];
  const runs = events.filter((e) => e.name === "model_run").map((e) => ({ span: [e.ts, e.ts + e.dur], width: 0, ms: new Map<string, number>() }));
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    const run = runs.find(({ span: [a, b] }) => e.ts >= a && e.ts <= b);
    if (!run) continue;
    const op = e.args.op_name ?? "?";
    run.ms.set(op, (run.ms.get(op) ?? 0) + e.dur / 1000);
    const shape = Object.values(e.args.output_type_shape?.[0] ?? {})[0];
    if (shape?.length === 4) run.width = Math.max(run.width, shape[3]);
  }
  return runs;
}

/** Allocation strategies: "default" is the VAE's own (arena on, memory patterns off). */
const VARIANTS: Record<string, SessionConfig> = {
  default: {}, off: { memoryArena: false, enableMemPattern: true }, pattern: { memoryArena: true, enableMemPattern: true },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const loadavg = () => fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    dir: { type: "string", default: path.resolve(__dirname, "..", "..", ".bench", "fullsize", "vae") },
    sizes: { type: "string", default: "256,512,512" }, variants: { type: "string", default: "off,default" },
    threads: { type: "string", default: "2" }, profile: { type: "boolean", default: false },
  } });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vae-decode-"));
  const sizes = values.sizes!.split(",").map(Number);
  const variants = values.variants!.split(",").map((v) => {
    if (!(v in VARIANTS)) throw new Error(`--variants: ${Object.keys(VARIANTS).join(", ")}; got ${JSON.stringify(v)}`);
    return v;
  });
  const models: AutoencoderKL[] = [];
  const start = processMemory().rss;
  for (const v of variants) {
    models.push(await AutoencoderKL.fromPretrained(values.dir!, {
      intraOpNumThreads: Number(values.threads), ...VARIANTS[v],
      ...(values.profile ? { inProcess: true, profile: path.join(work, `variant-${v}`) } : {}),
    }));
  }
  const scale = models[0].scaleFactor;
  const channels = models[0].config.latentChannels;
  console.log(`VAE ${values.dir}, ${values.threads} threads, ${variants.join("/")} loaded (RSS ${formatBytes(processMemory().rss)}, ` +
    `from ${formatBytes(start)}); sizes ${sizes.join(", ")} px; load average ${loadavg()}`);
  const outputs: Tensor[] = [];
  for (const [call, size] of sizes.entries()) {
    const lat = size / scale;
    const z = { data: new TorchGenerator(call).randn([1, channels, lat, lat]), dims: [1, channels, lat, lat] };
    for (const [i, vae] of models.entries()) {
      global.gc?.();
      resetPeak();
      const u = process.resourceUsage();
      const t = process.hrtime.bigint();
      const out = await vae.decodeRaw(z);
      const wall = Number(process.hrtime.bigint() - t) / 1e9;
      const v = process.resourceUsage();
      const m = processMemory();
      outputs[i] = out;
      const same = i > 0 ? `, max |Δ| vs ${variants[0]} ${maxDiff(outputs[0].data, out.data).toExponential(1)}` : "";
      console.log(`${size} px ${variants[i].padEnd(7)}: ${wall.toFixed(2)} s wall, user ${((v.userCPUTime - u.userCPUTime) / 1e6).toFixed(2)} s, ` +
        `system ${((v.systemCPUTime - u.systemCPUTime) / 1e6).toFixed(2)} s, ${v.minorPageFault - u.minorPageFault} minor faults; ` +
        `RSS after ${formatBytes(m.rss)}, peak ${formatBytes(m.rssPeak)}${same} (load ${loadavg()})`);
    }
  }
  outputs.length = 0;
  for (const [i, vae] of models.entries()) {
    await vae.release();
    global.gc?.();
    console.log(`${variants[i]} released: RSS ${formatBytes(processMemory().rss)}`);
  }
  if (values.profile) {
    for (const v of variants) {
      for (const file of fs.readdirSync(work).filter((f) => f.startsWith(`variant-${v}.`))) {
        const runs = kernelTimes(path.join(work, file));
        for (const width of [...new Set(runs.map((r) => r.width))]) {
          const same = runs.filter((r) => r.width === width);
          const ops = [...new Set(same.flatMap((r) => [...r.ms.keys()]))].map((op) => [op, median(same.map((r) => r.ms.get(op) ?? 0))] as const);
          const total = ops.reduce((a, [, ms]) => a + ms, 0);
          console.log(`\n${v}, ${width} px output: kernels ${(total / 1000).toFixed(2)} s per run (median of ${same.length})`);
          for (const [op, ms] of ops.sort((a, b) => b[1] - a[1]).filter(([, ms]) => ms >= total / 200)) {
            console.log(`  ${op.padEnd(24)} ${ms.toFixed(0).padStart(8)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)} %`);
          }
        }
      }
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
