/**
 * Every idiom of idioms.ts over the kernel's real sockets, in order: its execute_result, its stdout, or its error
 * (ename, evalue, and the traceback frames that must name the cell, line and column).
 */
import * as assert from "assert";
import * as fs from "fs";
import { Message } from "../../kernel/src/wire";
import { Idiom, idioms, makeIdiomWorkspace } from "./idioms";
import { KernelClient, ofType, streamText } from "./kernel-client";

const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Checks one executed idiom; shared with the notebook test through the same expectations. */
export function checkIdiom(idiom: Idiom, got: { count: number; result?: string; stdout: string; error?: { ename: string; evalue: string; traceback: string[] } }): void {
  if (idiom.error) {
    assert.ok(got.error, `expected ${idiom.error.ename}, got result ${got.result}`);
    assert.strictEqual(got.error.ename, idiom.error.ename, got.error.evalue);
    if (idiom.error.evalue) assert.match(got.error.evalue, idiom.error.evalue);
    const tb = got.error.traceback.map(plain);
    let from = 0;
    for (const expected of idiom.error.traceback ?? []) {
      const want = expected.replace(/\{n\}/g, String(got.count));
      const at = tb.findIndex((l, i) => i >= from && l.includes(want));
      assert.ok(at >= 0, `traceback lacks "${want}" (in order):\n${tb.join("\n")}`);
      from = at + 1;
    }
    return;
  }
  assert.strictEqual(got.error, undefined, `unexpected ${got.error?.ename}: ${got.error?.evalue}\n${got.error?.traceback.map(plain).join("\n")}`);
  assert.strictEqual(got.result, idiom.result);
  if (idiom.stdout !== undefined) assert.strictEqual(got.stdout, idiom.stdout);
}

function outcome(reply: Message, outputs: Message[]): Parameters<typeof checkIdiom>[1] {
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
