/**
 * The short version of bench/load-delete-soak.ts (1,000 cycles against a 2 % RSS target). Eight load → call →
 * delete → flush cycles of every model after a warm-up must end every thread they start (a session or worker
 * that outlives its model shows there exactly, where RSS cannot show it in a few cycles: glibc's per-thread malloc
 * arenas swing by ±10–15 MB from cycle to cycle), keep the JS heap flat, and stay within a loose RSS bound that a
 * leaked session per cycle (its worker thread, V8 isolate and onnxruntime pool) would soon break.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { openSoakPipeline, soakCycle, soakTrend, type SoakReading } from "../../bench/load-delete-soak";
import { formatBytes, processMemory } from "../../src/memory/probes";
import { MemoryTimeline } from "../../src/memory/report";
import { AutoencoderKL } from "../../src/models/autoencoder-kl";
import { fixturesDir } from "../helpers/paths";

/** Threads of this process (main, libuv pool, V8 platform, session workers and their onnxruntime pools). */
const threadCount = (): number => fs.readdirSync("/proc/self/task").length;

function heapAfterGc(): number {
  global.gc?.();
  return process.memoryUsage().heapUsed;
}

describe("soak: load → call → delete → flush cycles", function () {
  this.timeout(600_000);

  it("the thread count shows a model that is not released (the probe the next test relies on)", async () => {
    const dir = path.join(fixturesDir, "tiny-square", "pipeline", "vae");
    // One load first: the process starts some threads lazily (libuv's pool on its first file operation).
    await (await AutoencoderKL.fromPretrained(dir)).release();
    const before = threadCount();
    const vae = await AutoencoderKL.fromPretrained(dir);
    const loaded = threadCount();
    await vae.release();
    assert.ok(loaded > before, `${loaded} threads with a VAE loaded, ${before} before`);
    assert.strictEqual(threadCount(), before);
  });

  it("8 cycles after a warm-up of 3: every cycle ends the threads it started, the JS heap stays flat, RSS grows < 25 %", async () => {
    assert.ok(global.gc, "run with --expose-gc (.mocharc)");
    const pipe = await openSoakPipeline();
    for (let i = 0; i < 3; i++) await soakCycle(pipe);
    const threads = threadCount();
    const heap = heapAfterGc();
    const start = processMemory().rss;
    for (let i = 1; i <= 8; i++) {
      await soakCycle(pipe);
      assert.strictEqual(threadCount(), threads, `cycle ${i}: ${threadCount()} threads after delete + flush, ${threads} after the warm-up`);
    }
    const heapGrowth = heapAfterGc() - heap;
    const end = processMemory().rss;
    // The timeline's events (capped, see below) are the only history the pipeline keeps: < 1 MB.
    assert.ok(heapGrowth < 1 << 20, `JS heap grew ${formatBytes(heapGrowth)} over 8 cycles`);
    assert.ok(end < start * 1.25, `RSS ${formatBytes(start)} → ${formatBytes(end)} over 8 cycles`);
  });

  it("the memory timeline keeps only its last MAX_EVENTS events (an open pipeline's history does not grow forever)", () => {
    const timeline = new MemoryTimeline();
    const n = MemoryTimeline.MAX_EVENTS + 25;
    for (let i = 0; i < n; i++) timeline.record("mark", `event ${i}`);
    assert.strictEqual(timeline.events.length, MemoryTimeline.MAX_EVENTS);
    assert.strictEqual(timeline.events[0]!.label, "event 25");
    assert.strictEqual(timeline.events.at(-1)!.label, `event ${n - 1}`);
  });

  it("soakTrend: the floor (min of the first and last readings) and a least-squares line, so one noisy reading does not decide", () => {
    const MiB = 1 << 20;
    // 100 MiB flat with one spike of +20 MiB at the end: start → end says +20 %, the trend figures do not.
    const flat: SoakReading[] = Array.from({ length: 30 }, (_, i) => ({ cycle: i * 10, rss: 100 * MiB + (i % 2) * MiB, rssAnon: 0, rssFile: 0, heapUsed: 0, heapTotal: 0 }));
    flat[29]!.rss = 120 * MiB;
    const t = soakTrend(flat, 5);
    assert.strictEqual(t.firstMin, 100 * MiB);
    assert.strictEqual(t.lastMin, 100 * MiB);
    assert.strictEqual(t.floorGrowth, 0);
    assert.ok(t.fitGrowth < 0.07, `fit ${t.fitGrowth}`);
    // A steady leak of 0.1 MiB per cycle over 290 cycles: both figures see ~29 %.
    const leak = flat.map((r) => ({ ...r, rss: 100 * MiB + r.cycle * 0.1 * MiB }));
    const l = soakTrend(leak, 5);
    assert.ok(Math.abs(l.fitGrowth - 0.29) < 1e-9, `fit ${l.fitGrowth}`);
    assert.ok(Math.abs(l.floorGrowth - 0.25) < 1e-9, `floor ${l.floorGrowth}`);
  });
});
