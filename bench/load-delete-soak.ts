/**
 * Load/delete soak: N cycles of load (text encoder, transformer, VAE) → call() → delete all three → flush(), on the
 * tiny test pipeline, printing RSS after a warm-up and at the end. The target is < 2 % growth over 1,000 cycles.
 *
 * Run: npm run build && node --expose-gc dist/bench/load-delete-soak.js [cycles=1000] [warmup=50]
 */
import * as os from "os";
import * as path from "path";
import { formatBytes, processMemory } from "../src/memory/probes";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import { fixturesDir } from "../test/helpers/paths";

/** One cycle: every model loaded, one small run, every model deleted and its memory flushed. */
export async function soakCycle(pipe: PixArtSigmaPipeline): Promise<void> {
  for (const name of ["textEncoder", "transformer", "vae"] as const) await pipe.load(name);
  const out = await pipe.call({ prompt: "a cat", numInferenceSteps: 1, useResolutionBinning: false, seed: 0, outputType: "tensor" });
  if (!out.tensor || !out.tensor.data.every(Number.isFinite)) throw new Error("the soak run returned no finite image");
  delete pipe.textEncoder;
  delete pipe.transformer;
  delete pipe.vae;
  await pipe.flush();
}

export async function openSoakPipeline(): Promise<PixArtSigmaPipeline> {
  return PixArtSigmaPipeline.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline"), { textEncoder: null, transformer: null, vae: null });
}

async function main(): Promise<void> {
  const cycles = Number(process.argv[2] ?? 1000);
  const warmup = Number(process.argv[3] ?? 50);
  const pipe = await openSoakPipeline();
  const t0 = Date.now();
  for (let i = 0; i < warmup; i++) await soakCycle(pipe);
  const start = processMemory().rss;
  console.log(`after ${warmup} warm-up cycles: RSS ${formatBytes(start)}`);
  for (let i = 1; i <= cycles; i++) {
    await soakCycle(pipe);
    if (i % 100 === 0) {
      const m = processMemory();
      console.log(`cycle ${i}: RSS ${formatBytes(m.rss)} (anonymous ${formatBytes(m.rssAnon)}, JS heap used ${formatBytes(process.memoryUsage().heapUsed)}; ` +
        `${pipe.timeline.events.length} timeline events) ${((Date.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg()[0]!.toFixed(1)}`);
    }
  }
  const end = processMemory().rss;
  console.log(`${cycles} cycles (load → call → delete → flush): RSS ${formatBytes(start)} → ${formatBytes(end)} ` +
    `(${(((end - start) / start) * 100).toFixed(2)} %), ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
