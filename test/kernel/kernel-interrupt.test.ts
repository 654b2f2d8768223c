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

  /** Starts `code`, waits until it runs, interrupts it with `how`, and returns the reply and the time it took. */
  async function interruptDuring(code: string, how: () => Promise<unknown>): Promise<{ content: { [k: string]: unknown }; ms: number }> {
    const id = await kc.send("shell", "execute_request", { code, silent: false, stop_on_error: true });
    await kc.waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "execute_input");
    await new Promise((r) => setTimeout(r, 300));
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

  it("stops `while (true) {}` on SIGINT", async () => {
    const { content, ms } = await interruptDuring("while (true) {}", async () => kc.proc.kill("SIGINT"));
    assert.strictEqual(content["status"], "error");
    assert.strictEqual(content["ename"], "InterruptedError");
    assert.ok(ms < 2000, `took ${ms} ms`);
    await assertStillWorks();
  });

  it("stops `while (true) {}` on interrupt_request", async () => {
    let interruptReply: { [k: string]: unknown } | undefined;
    const { content } = await interruptDuring("while (true) {}", async () => {
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
      "for (;;) {",
      "  throwIfInterrupted(signal);",
      "  await new Promise((r) => setTimeout(r, 20));",
      "  (globalThis as any).steps++;",
      "}",
    ].join("\n");
    const { content, ms } = await interruptDuring(code, () => kc.request("control", "interrupt_request", {}));
    assert.strictEqual(content["ename"], "InterruptedError");
    assert.ok(ms < 900, `took ${ms} ms: the loop should stop at its next step, before the 1 s grace period`);
    const before = await kc.execute("(globalThis as any).steps");
    await new Promise((r) => setTimeout(r, 200));
    const after = await kc.execute("(globalThis as any).steps");
    const steps = (o: typeof before): unknown => ofType(o.outputs, "execute_result")[0]!.content["data"];
    assert.deepStrictEqual(steps(after), steps(before), "the loop kept running after the interrupt");
  });

  it("abandons an async cell that ignores the signal after the grace period", async () => {
    const { content, ms } = await interruptDuring("await new Promise(() => {});", async () => kc.proc.kill("SIGINT"));
    assert.strictEqual(content["ename"], "InterruptedError");
    assert.ok(ms >= 900 && ms < 5000, `took ${ms} ms (grace period is 1 s)`);
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
    await new Promise((r) => setTimeout(r, 100));
    const first = await kc.execute("(globalThis as any).ticks");
    await new Promise((r) => setTimeout(r, 150));
    const second = await kc.execute("(globalThis as any).ticks");
    const ticks = (o: typeof first): unknown => ofType(o.outputs, "execute_result")[0]!.content["data"];
    assert.deepStrictEqual(ticks(second), ticks(first));
    await assertStillWorks();
  });
});
