/**
 * The memory panel's reading of `pixart.memory` snapshots: a real-shaped snapshot passes through, wrong types are
 * dropped or zeroed, a newer protocol version gives a message, and nothing of unexpected type reaches the DOM code.
 */
import * as assert from "assert";
import { parseSnapshot, SNAPSHOT_VERSION, type PanelSnapshot } from "../src/panel-data";

const good = {
  type: "snapshot", version: 1, seq: 7, at: 1_700_000_000_000, busy: true, intervalMs: 1000,
  process: { rss: 300e6, rssAnon: 200e6, rssFile: 100e6, rssPeak: 320e6, heapUsed: 90e6, arrayBuffers: 1e6 },
  gpu: { usedBytes: 2e9, gpus: [{ uuid: "GPU-1", usedBytes: 2e9 }], scope: "process" },
  pipelines: [{
    id: 1, label: "tiny-shapes", eventCount: 12,
    components: [
      { name: "textEncoder", loaded: true, weightBytes: { F32: 1000, BF16: 24 }, residentWeightBytes: 512, device: "cuda" },
      { name: "transformer", loaded: false, weightBytes: {}, residentWeightBytes: 0 },
    ],
    events: [{ at: 1500, kind: "load", label: "load textEncoder", memory: { rss: 250e6 } }],
  }],
};

describe("memory panel: snapshot parsing", () => {
  it("keeps every field of a version-1 snapshot", () => {
    const s = parseSnapshot(good) as PanelSnapshot;
    assert.strictEqual(s.seq, 7);
    assert.strictEqual(s.busy, true);
    assert.deepStrictEqual(s.process, good.process);
    assert.deepStrictEqual(s.gpu, { usedBytes: 2e9, scope: "process" });
    assert.deepStrictEqual(s.pipelines[0]!.components[0], { name: "textEncoder", loaded: true, weightBytes: { F32: 1000, BF16: 24 }, residentWeightBytes: 512, device: "cuda" });
    assert.deepStrictEqual(s.pipelines[0]!.events, [{ at: 1500, kind: "load", label: "load textEncoder", rss: 250e6 }]);
    assert.strictEqual(s.pipelines[0]!.eventCount, 12);
  });

  it("says so for another protocol version or a message that is not a snapshot", () => {
    assert.match(parseSnapshot({ ...good, version: 2 }) as string, /version 2 .* knows version 1\. Update the JupyterLab extension/);
    assert.strictEqual(SNAPSHOT_VERSION, 1);
    for (const bad of [null, 3, "snapshot", [], { type: "reply" }]) assert.strictEqual(typeof parseSnapshot(bad), "string");
  });

  it("turns wrong types into zeros, drops malformed entries, bounds lengths", () => {
    const s = parseSnapshot({
      ...good,
      seq: "7", busy: "yes",
      process: { rss: NaN, rssAnon: -5, rssFile: Infinity, rssPeak: "1", heapUsed: null },
      gpu: "lots",
      pipelines: [
        { id: "1", components: [] },
        { id: 2, label: { html: "<b>" }, components: [{ name: 5 }, { name: "vae", loaded: "true", weightBytes: { F32: "9" }, residentWeightBytes: -1 }, null],
          events: [{ label: "<img src=x onerror=alert(1)>".repeat(100), memory: "x" }, 7] },
        ...Array.from({ length: 100 }, (_, i) => ({ id: 10 + i, components: [] })),
      ],
    }) as PanelSnapshot;
    assert.strictEqual(s.seq, 0);
    assert.strictEqual(s.busy, false);
    assert.deepStrictEqual(s.process, { rss: 0, rssAnon: 0, rssFile: 0, rssPeak: 0, heapUsed: 0, arrayBuffers: 0 });
    assert.strictEqual(s.gpu, null);
    const p = s.pipelines[0]!;
    assert.strictEqual(p.id, 2);
    assert.strictEqual(p.label, "pipeline");
    assert.deepStrictEqual(p.components, [{ name: "vae", loaded: false, weightBytes: { F32: 0 }, residentWeightBytes: 0 }]);
    assert.strictEqual(p.events.length, 1);
    assert.strictEqual(p.events[0]!.label.length, 200, "labels are cut to 200 characters");
    assert.strictEqual(p.events[0]!.rss, 0);
    assert.ok(s.pipelines.length <= 64);
  });
});
