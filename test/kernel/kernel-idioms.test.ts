/**
 * Every idiom of idioms.ts over the kernel's real sockets, in order: its execute_result, its stdout, or its error
 * (ename, evalue, and the traceback frames that must name the cell, line and column).
 */
import * as assert from "assert";
import * as fs from "fs";
import { Message } from "../../kernel/src/wire";
import { checkIdiom, idioms, IdiomOutcome, makeIdiomWorkspace } from "./idioms";
import { KernelClient, ofType, streamText } from "./kernel-client";

function outcome(reply: Message, outputs: Message[]): IdiomOutcome {
  const result = ofType(outputs, "execute_result")[0];
  const error = ofType(outputs, "error")[0];
  return {
    count: Number(reply.content["execution_count"]),
    result: result ? String((result.content["data"] as Record<string, unknown>)["text/plain"]) : undefined,
    stdout: streamText(outputs, "stdout"),
    error: error
      ? { ename: String(error.content["ename"]), evalue: String(error.content["evalue"]), traceback: error.content["traceback"] as string[] }
      : undefined,
  };
}

describe("kernel: TypeScript idioms over the protocol", function () {
  let kc: KernelClient;
  let root: string;

  before(async function () {
    const ws = makeIdiomWorkspace();
    root = ws.root;
    kc = await KernelClient.start({ cwd: ws.notebooks });
  });

  after(async function () {
    await kc?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  for (const idiom of idioms) {
    it(idiom.title, async () => {
      const { reply, outputs } = await kc.execute(idiom.code, { stop_on_error: false });
      assert.strictEqual(reply.content["status"], idiom.error ? "error" : "ok");
      checkIdiom(idiom, outcome(reply, outputs));
    });
  }
});
