/**
 * The memory panel's comm (`pixart.memory`) over the real protocol: snapshots on open and on a timer, pipelines and
 * their components listed from the live registry, snapshots that keep coming while a cell runs a pipeline, the
 * delete and flush requests (and their refusals), interval changes, and no more snapshots after comm_close.
 */
import * as assert from "assert";
import * as path from "path";
import { fixturesDir } from "../helpers/paths";
import { buildRoot, KernelClient } from "./kernel-client";
import type { Message } from "../../kernel/src/wire";

interface Component { name: string; loaded: boolean; weightBytes: Record<string, number> }
interface Snapshot {
  type: "snapshot"; version: number; seq: number; at: number; busy: boolean; intervalMs: number;
  process: { rss: number; rssAnon: number; rssFile: number };
  gpu: unknown;
  pipelines: Array<{ id: number; label: string; components: Component[]; events: Array<{ kind: string; label: string }>; eventCount: number }>;
}
interface Reply { type: "reply"; request: string | null; ok: boolean; error?: string }

const COMM = "mem-1";

describe("kernel: memory panel comm (pixart.memory)", function () {
  this.timeout(180_000);
  let kc: KernelClient;

  const commData = (m: Message) => (m.content as { data: unknown }).data as Snapshot | Reply;
  const ofComm = (m: Message) => m.header.msg_type === "comm_msg" && m.content["comm_id"] === COMM;
  const snapshots = (): Snapshot[] => kc.iopubMessages.filter(ofComm).map(commData).filter((d): d is Snapshot => d.type === "snapshot");
  const nextSnapshot = async (after: number, pred: (s: Snapshot) => boolean = () => true, timeoutMs = 20000): Promise<Snapshot> => {
    const m = await kc.waitForIopub((x) => ofComm(x) && commData(x).type === "snapshot" && (commData(x) as Snapshot).seq > after && pred(commData(x) as Snapshot), timeoutMs);
    return commData(m) as Snapshot;
  };
  const lastSeq = () => snapshots().reduce((a, s) => Math.max(a, s.seq), 0);

  /** Sends a request and returns its reply and the snapshot sent right after it. */
  async function request(data: object): Promise<{ reply: Reply; snapshot: Snapshot }> {
    const seen = kc.iopubMessages.length;
    await kc.send("shell", "comm_msg", { comm_id: COMM, data });
    const replyMsg = await kc.waitForIopub((m) => kc.iopubMessages.indexOf(m) >= seen && ofComm(m) && commData(m).type === "reply");
    const reply = commData(replyMsg) as Reply;
    const after = kc.iopubMessages.indexOf(replyMsg);
    const snapMsg = await kc.waitForIopub((m) => kc.iopubMessages.indexOf(m) > after && ofComm(m) && commData(m).type === "snapshot");
    return { reply, snapshot: commData(snapMsg) as Snapshot };
  }

  async function run(code: string): Promise<void> {
    const { reply } = await kc.execute(code, {}, 90000);
    assert.strictEqual(reply.content["status"], "ok", JSON.stringify(reply.content));
  }

  before(async () => {
    kc = await KernelClient.start();
  });
  after(async () => {
    await kc?.close();
  });

  it("sends a snapshot on open: process memory, no pipelines yet, no GPU without a driver", async () => {
    await kc.send("shell", "comm_open", { comm_id: COMM, target_name: "pixart.memory", data: { interval_ms: 200 } });
    const s = await nextSnapshot(0);
    assert.strictEqual(s.version, 1);
    assert.strictEqual(s.intervalMs, 200);
    assert.ok(s.process.rss > 0 && s.process.rssAnon > 0, JSON.stringify(s.process));
    assert.ok(Math.abs(s.process.rss - s.process.rssAnon - s.process.rssFile) < s.process.rss * 0.05, "rss ≈ anon + file");
    assert.deepStrictEqual(s.pipelines, []);
    const info = await kc.request("shell", "comm_info_request", { target_name: "pixart.memory" });
    assert.deepStrictEqual(info.content["comms"], { [COMM]: { target_name: "pixart.memory" } });
  });

  it("keeps sending on its timer while idle", async () => {
    const first = lastSeq();
    const later = await nextSnapshot(first + 2);
    assert.strictEqual(later.busy, false);
  });

  it("lists a pipeline made in a cell, with its components", async () => {
    await run([
      `import { PixArtSigmaPipeline } from ${JSON.stringify(path.join(buildRoot, "src", "index"))};`,
      `const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(path.join(fixturesDir, "tiny-square", "pipeline"))}, { progress: false });`,
    ].join("\n"));
    const s = await nextSnapshot(lastSeq(), (x) => x.pipelines.length === 1);
    const [p] = s.pipelines;
    assert.strictEqual(p.label, "pipeline"); // the fixture folder's name
    assert.deepStrictEqual(p.components.map((c) => [c.name, c.loaded]), [["textEncoder", true], ["transformer", true], ["vae", true]]);
    assert.ok(Object.values(p.components[1].weightBytes).reduce((a, b) => a + b, 0) > 0);
    assert.ok(p.events.some((e) => e.kind === "load" && e.label === "load transformer"));
  });

  it("keeps sending while a cell runs a pipeline (busy snapshots before the cell's reply)", async () => {
    const id = await kc.send("shell", "execute_request", {
      code: [
        "for (let i = 0; i < 3; i++) {",
        "  await pipe.call({ prompt: 'a red fox', numInferenceSteps: 4, seed: i, useResolutionBinning: false, outputType: 'latent', progress: false });",
        "  await new Promise((r) => setTimeout(r, 400));",
        "}",
      ].join("\n"),
      silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true,
    });
    const start = kc.iopubMessages.findIndex((m) => m.parent_header.msg_id === id && m.header.msg_type === "execute_input");
    const reply = await kc.reply(id, 90000);
    assert.strictEqual(reply.content["status"], "ok", JSON.stringify(reply.content));
    const idle = await kc.waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "status" && m.content["execution_state"] === "idle");
    const during = kc.iopubMessages.slice(Math.max(0, start), kc.iopubMessages.indexOf(idle)).filter(ofComm).map(commData)
      .filter((d): d is Snapshot => d.type === "snapshot" && d.busy);
    // The cell awaits for at least 1.2 s with a 200 ms interval; two is a floor that holds on a loaded machine.
    assert.ok(during.length >= 2, `only ${during.length} snapshots while the cell ran`);
    const runs = (await nextSnapshot(lastSeq())).pipelines[0].events.filter((e) => e.kind === "run");
    assert.ok(runs.length > 0, "the runs are on the pipeline's events");
  });

  it("deletes a component on request; the notebook sees it gone", async () => {
    const id = (await nextSnapshot(lastSeq())).pipelines[0].id;
    const { reply, snapshot } = await request({ request: "delete", pipeline: id, component: "transformer" });
    assert.deepStrictEqual(reply, { type: "reply", request: "delete", ok: true });
    assert.strictEqual(snapshot.pipelines[0].components.find((c) => c.name === "transformer")!.loaded, false);
    assert.ok(snapshot.pipelines[0].events.some((e) => e.kind === "delete" && e.label === "delete transformer"));
    const { outputs } = await kc.execute("pipe.transformer === null");
    assert.strictEqual((outputs.find((m) => m.header.msg_type === "execute_result")!.content["data"] as { "text/plain": string })["text/plain"], "true");
  });

  it("refuses bad requests with a reason and keeps the comm", async () => {
    const id = (await nextSnapshot(lastSeq())).pipelines[0].id;
    const twice = await request({ request: "delete", pipeline: id, component: "transformer" });
    assert.strictEqual(twice.reply.ok, false);
    assert.match(twice.reply.error!, /^ComponentStateError: pipe\.transformer is already removed/);
    const unknown = await request({ request: "delete", pipeline: id, component: "unet" });
    assert.match(unknown.reply.error!, /ComponentStateError: unknown component "unet"/);
    const noPipe = await request({ request: "delete", pipeline: 999, component: "vae" });
    assert.match(noPipe.reply.error!, /MemoryRequestError: no pipeline 999/);
    for (const data of [{ request: "format c:" }, { nope: 1 }, { request: "interval", ms: "fast" }, { request: "flush", pipeline: "all" }]) {
      const bad = await request(data);
      assert.strictEqual(bad.reply.ok, false, JSON.stringify(data));
      assert.match(bad.reply.error!, /^MemoryRequestError: /);
    }
    const info = await kc.request("shell", "comm_info_request", { target_name: "pixart.memory" });
    assert.ok(COMM in (info.content["comms"] as object));
  });

  it("flush collects what cells dropped: RSS falls", async () => {
    await run("let junk: Float64Array | null = new Float64Array(32 * 1024 * 1024).fill(1); junk = null;");
    const before = (await nextSnapshot(lastSeq())).process.rss;
    const { reply } = await request({ request: "flush" });
    assert.deepStrictEqual(reply, { type: "reply", request: "flush", ok: true });
    // 256 MiB were garbage; freeing the backing store can trail the collection, so wait for a later snapshot.
    const after = await nextSnapshot(lastSeq() - 1, (s) => s.process.rss < before - 128 * 1024 * 1024, 10000);
    assert.ok(after.pipelines[0].events.some((e) => e.kind === "flush"), "the pipeline's flush is on its events");
  });

  it("changes its interval on request (clamped to 100 ms .. 60 s)", async () => {
    assert.strictEqual((await request({ request: "interval", ms: 5 })).snapshot.intervalMs, 100);
    assert.strictEqual((await request({ request: "interval", ms: 1e9 })).snapshot.intervalMs, 60000);
    const { snapshot } = await request({ request: "interval", ms: 150 });
    assert.strictEqual(snapshot.intervalMs, 150);
  });

  it("stops sending after comm_close", async () => {
    const id = await kc.send("shell", "comm_close", { comm_id: COMM, data: {} });
    await kc.outputsOf(id);
    const seq = lastSeq();
    await new Promise((r) => setTimeout(r, 1000));
    assert.strictEqual(lastSeq(), seq);
  });

  it("closes at once when opened with a bad interval", async () => {
    const id = await kc.send("shell", "comm_open", { comm_id: "mem-2", target_name: "pixart.memory", data: { interval_ms: "soon" } });
    const outputs = await kc.outputsOf(id);
    const close = outputs.find((m) => m.header.msg_type === "comm_close")!;
    assert.match(String((close.content["data"] as { error: string }).error), /"ms" must be a number/);
  });
});
