/**
 * The short version of bench/load-delete-soak.ts: load → call → delete → flush cycles of every model must not
 * grow the process (the bench runs 1,000 cycles against a 2 % target; this checks 8 after a warm-up, loosely,
 * since a few cycles on a loaded machine are noisy).
 */
import * as assert from "assert";
import { openSoakPipeline, soakCycle } from "../../bench/load-delete-soak";
import { formatBytes, processMemory } from "../../src/memory/probes";
import { MemoryTimeline } from "../../src/memory/report";

describe("soak: load → call → delete → flush cycles", function () {
  this.timeout(600_000);
  it("8 cycles after a warm-up of 3 grow RSS by less than 10%", async () => {
    const pipe = await openSoakPipeline();
    for (let i = 0; i < 3; i++) await soakCycle(pipe);
    const start = processMemory().rss;
    for (let i = 0; i < 8; i++) await soakCycle(pipe);
    const end = processMemory().rss;
    assert.ok(end < start * 1.1, `RSS ${formatBytes(start)} → ${formatBytes(end)} over 8 cycles`);
  });

  it("the memory timeline keeps only its last MAX_EVENTS events (an open pipeline's history does not grow forever)", () => {
    const timeline = new MemoryTimeline();
    const n = MemoryTimeline.MAX_EVENTS + 25;
    for (let i = 0; i < n; i++) timeline.record("mark", `event ${i}`);
    assert.strictEqual(timeline.events.length, MemoryTimeline.MAX_EVENTS);
    assert.strictEqual(timeline.events[0]!.label, "event 25");
    assert.strictEqual(timeline.events.at(-1)!.label, `event ${n - 1}`);
  });
});
