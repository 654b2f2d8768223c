/**
 * Interrupts over real sockets: SIGINT (Jupyter's "signal" mode) and interrupt_request on control ("message" mode)
 * stop a synchronous loop, a cooperative async loop stops between steps through currentCellSignal(), and an async
 * cell that ignores the signal is abandoned after the grace period. The kernel stays alive and runs the next cell.
 */
import * as assert from "assert";
import { interruptModule, KernelClient, ofType } from "./kernel-client";

describe("kernel interrupts", function () {
  let kc: KernelClient;

  before(async function () {
    kc = await KernelClient.start();
  });

  after(async function () {
    await kc?.close();
  });

  /**
   * Starts `code`, waits until it runs (its first stdout output: compiling a cell takes a while, more so on a loaded
   * machine), interrupts it with `how`, and returns the reply and the time it took.
   */
  async function interruptDuring(code: string, how: () => Promise<unknown>): Promise<{ content: { [k: string]: unknown }; ms: number }> {
    const id = await kc.send("shell", "execute_request", { code, silent: false, stop_on_error: true });
    await kc.waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "stream");
    const started = Date.now();
    await how();
    const reply = await kc.reply(id, 20000);
    return { content: reply.content, ms: Date.now() - started };
  }

  async function assertStillWorks(): Promise<void> {
    assert.ok(kc.alive, "kernel process exited");
    const { reply, outputs } = await kc.execute("6 * 7");
    assert.strictEqual(reply.content["status"], "ok");
    assert.deepStrictEqual(ofType(outputs, "execute_result")[0]!.content["data"], { "text/plain": "42" });
  }

  /** `expression` (a counter) stops changing within a few seconds: the work that increments it has stopped. */
  async function assertSettles(expression: string): Promise<void> {
    const read = async (): Promise<unknown> => ofType((await kc.execute(expression)).outputs, "execute_result")[0]!.content["data"];
    let previous = await read();
    for (let attempt = 0; attempt < 20; attempt++) {
      await new Promise((r) => setTimeout(r, 200));
      const current = await read();
      if (JSON.stringify(current) === JSON.stringify(previous)) return;
      previous = current;
    }
    assert.fail(`${expression} kept changing after the interrupt`);
  }

  /** An endless synchronous loop that writes a dot every 100 ms (the kernel sends it while the loop runs). */
  const endlessLoop = "let last = 0;\nwhile (true) {\n  if (Date.now() - last > 100) { process.stdout.write('.'); last = Date.now(); }\n}";

  it("stops an endless synchronous loop on SIGINT", async () => {
    const { content, ms } = await interruptDuring(endlessLoop, async () => kc.proc.kill("SIGINT"));
    assert.strictEqual(content["status"], "error");
    assert.strictEqual(content["ename"], "InterruptedError");
    assert.ok(ms < 5000, `took ${ms} ms`);
    await assertStillWorks();
  });

  it("stops an endless synchronous loop on interrupt_request", async () => {
    let interruptReply: { [k: string]: unknown } | undefined;
    const { content } = await interruptDuring(endlessLoop, async () => {
      interruptReply = (await kc.request("control", "interrupt_request", {})).content;
    });
    assert.deepStrictEqual(interruptReply, { status: "ok" });
    assert.strictEqual(content["ename"], "InterruptedError");
    await assertStillWorks();
  });

  it("stops a cooperative async loop between steps through currentCellSignal()", async () => {
    const code = [
      `import { currentCellSignal, throwIfInterrupted } from ${JSON.stringify(interruptModule)};`,
      "const signal = currentCellSignal();",
      "(globalThis as any).steps = 0;",
      "console.log('started');",
      "for (;;) {",
      "  throwIfInterrupted(signal);",
      "  await new Promise((r) => setTimeout(r, 20));",
      "  (globalThis as any).steps++;",
      "}",
    ].join("\n");
    const { content } = await interruptDuring(code, () => kc.request("control", "interrupt_request", {}));
    assert.strictEqual(content["ename"], "InterruptedError");
    // Stopped by its own check, not abandoned after the grace period; the traceback shows where.
    assert.strictEqual(content["evalue"], "the cell was interrupted");
    assert.match((content["traceback"] as string[]).join("\n"), /throwIfInterrupted/);
    await assertSettles("(globalThis as any).steps");
  });

  it("abandons an async cell that ignores the signal after the grace period", async () => {
    const { content, ms } = await interruptDuring("console.log('waiting');\nawait new Promise(() => {});", async () => kc.proc.kill("SIGINT"));
    assert.strictEqual(content["ename"], "InterruptedError");
    assert.match(String(content["evalue"]), /did not stop within 1000 ms/);
    assert.ok(ms >= 1000, `took ${ms} ms, less than the 1 s grace period`);
    await assertStillWorks();
  });

  it("aborts the last cell's signal when interrupted while idle, stopping its background work", async () => {
    await kc.execute(
      [
        `import { currentCellSignal } from ${JSON.stringify(interruptModule)};`,
        "const bg = currentCellSignal();",
        "(globalThis as any).ticks = 0;",
        "const timer = setInterval(() => { if (bg.aborted) clearInterval(timer); else (globalThis as any).ticks++; }, 10);",
      ].join("\n"),
    );
    await kc.request("control", "interrupt_request", {});
    await assertSettles("(globalThis as any).ticks");
    await assertStillWorks();
  });
});
