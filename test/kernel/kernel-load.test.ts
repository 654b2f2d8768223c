/**
 * 200 mixed cells sent back to back (values, display_data, stdout, thrown errors, type errors, synchronous and
 * async cells interrupted while they run): every request gets its reply with the expected status, in order, with
 * consecutive execution counts and its own outputs; nothing is dropped or reordered.
 */
import * as assert from "assert";
import { Message } from "../../kernel/src/wire";
import { displayModule, KernelClient, ofType, streamText } from "./kernel-client";

type Kind = "value" | "display" | "stdout" | "throw" | "type-error" | "interrupt-sync" | "interrupt-async";

const kinds: Kind[] = ["value", "display", "stdout", "throw", "value", "type-error", "display", "stdout"];

function kindOf(i: number): Kind {
  if (i % 20 === 9) return i % 40 === 9 ? "interrupt-sync" : "interrupt-async";
  return kinds[i % kinds.length]!;
}

function codeOf(kind: Kind, i: number): string {
  switch (kind) {
    case "value":
      return `const v${i} = ${i}\nv${i} * 2`;
    case "display":
      return `display({ "text/plain": "d${i}" })`;
    case "stdout":
      return `console.log("s${i}")`;
    case "throw":
      return `const before${i} = ${i}\nthrow new Error("e${i}")`;
    case "type-error":
      return `const bad${i}: number = "x${i}"`;
    case "interrupt-sync":
      // Output written during a synchronous loop leaves on a later write: one every 100 ms.
      return `let last${i} = 0\nprocess.stdout.write("running ${i}\\n")\nwhile (true) {\n  if (Date.now() - last${i} > 100) { process.stdout.write("."); last${i} = Date.now() }\n}`;
    case "interrupt-async":
      return `console.log("running ${i}")\nawait new Promise(() => {})`;
  }
}

describe("kernel under load: 200 mixed cells", function () {
  this.timeout(600000);
  let kc: KernelClient;

  before(async () => {
    kc = await KernelClient.start();
    const { reply } = await kc.execute(`import { display } from ${JSON.stringify(displayModule)};`);
    assert.strictEqual(reply.content["status"], "ok");
  });

  after(async () => {
    await kc?.close();
  });

  it("answers every request in order with its own outputs", async () => {
    const n = Number(process.env["PIXART_LOAD_CELLS"] ?? 200);
    const ids: string[] = [];
    const interruptFor = new Map<string, number>();
    // Interrupt each interruptible cell once it has started (its first stdout line is on IOPub).
    const interrupts: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const kind = kindOf(i);
      const id = await kc.send("shell", "execute_request", { code: codeOf(kind, i), silent: false, store_history: true, stop_on_error: false });
      ids.push(id);
      if (kind.startsWith("interrupt")) {
        interruptFor.set(id, i);
        interrupts.push(
          kc
            .waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "stream", 300000)
            .then(() => kc.request("control", "interrupt_request", {})),
        );
      }
    }
    const replies: Message[] = [];
    for (const [i, id] of ids.entries()) {
      replies.push(await kc.reply(id, 120000).catch((e: Error) => assert.fail(`cell ${i} (${kindOf(i)}): ${e.message}`)));
    }
    await Promise.all(interrupts);

    const first = Number(replies[0]!.content["execution_count"]);
    for (let i = 0; i < n; i++) {
      const kind = kindOf(i);
      const reply = replies[i]!;
      const where = `cell ${i} (${kind})`;
      assert.strictEqual(reply.content["execution_count"], first + i, `${where}: execution count`);
      const outputs = await kc.outputsOf(ids[i]!, 60000);
      const input = ofType(outputs, "execute_input")[0];
      assert.strictEqual(input?.content["code"], codeOf(kind, i), `${where}: execute_input`);
      const status = reply.content["status"];
      switch (kind) {
        case "value":
          assert.strictEqual(status, "ok", where);
          assert.deepStrictEqual(ofType(outputs, "execute_result")[0]?.content["data"], { "text/plain": String(2 * i) }, where);
          break;
        case "display":
          assert.strictEqual(status, "ok", where);
          assert.deepStrictEqual(ofType(outputs, "display_data").map((m) => m.content["data"]), [{ "text/plain": `d${i}` }], where);
          break;
        case "stdout":
          assert.strictEqual(status, "ok", where);
          assert.strictEqual(streamText(outputs, "stdout"), `s${i}\n`, where);
          break;
        case "throw":
          assert.strictEqual(status, "error", where);
          assert.strictEqual(reply.content["evalue"], `e${i}`, where);
          assert.strictEqual(ofType(outputs, "error").length, 1, where);
          break;
        case "type-error":
          assert.strictEqual(status, "error", where);
          assert.strictEqual(reply.content["ename"], "TSError", where);
          break;
        default:
          assert.strictEqual(status, "error", where);
          assert.strictEqual(reply.content["ename"], "InterruptedError", where);
          assert.match(streamText(outputs, "stdout"), new RegExp(`^running ${i}\n\\.*$`), where);
      }
    }
    // What the failed cells declared before they threw is still there.
    const thrown = [...Array(n).keys()].filter((i) => kindOf(i) === "throw");
    const names = [thrown[0]!, thrown[thrown.length - 1]!];
    const { outputs } = await kc.execute(`[${names.map((i) => `before${i}`).join(", ")}]`);
    assert.deepStrictEqual(ofType(outputs, "execute_result")[0]?.content["data"], { "text/plain": `[ ${names.join(", ")} ]` });
  });
});
