/**
 * The kernel driven over its real ZeroMQ sockets: kernel_info, execute (results, display bundles, errors, aborts),
 * complete / inspect / is_complete / history, comms both ways, heartbeat, bad signatures, shutdown.
 * One kernel for the whole file.
 */
import * as assert from "assert";
import * as zmq from "zeromq";
import { endpoint } from "../../kernel/src/connection";
import { displayModule, KernelClient, ofType, streamText } from "./kernel-client";

const importDisplay = `import { display, clearOutput, registerCommTarget, openComm } from ${JSON.stringify(displayModule)};`;

describe("kernel protocol over ZeroMQ", function () {
  let kc: KernelClient;

  before(async function () {
    kc = await KernelClient.start();
  });

  after(async function () {
    await kc?.close();
  });

  describe("kernel_info", () => {
    it("replies per the schema, with TypeScript as the language", async () => {
      const reply = await kc.request("shell", "kernel_info_request", {});
      const c = reply.content as { [k: string]: any };
      assert.strictEqual(reply.header.msg_type, "kernel_info_reply");
      assert.strictEqual(c.status, "ok");
      assert.strictEqual(c.protocol_version, "5.3");
      assert.strictEqual(c.implementation, "pixart-ts");
      assert.strictEqual(c.language_info.name, "typescript");
      assert.strictEqual(c.language_info.file_extension, ".ts");
      assert.strictEqual(c.language_info.version, "5.0.4"); // tslab's TypeScript fork, pinned with tslab 1.0.22
      assert.strictEqual(typeof c.banner, "string");
    });

    it("answers on the control channel too", async () => {
      const reply = await kc.request("control", "kernel_info_request", {});
      assert.strictEqual(reply.header.msg_type, "kernel_info_reply");
    });
  });

  describe("execute", () => {
    it("publishes execute_input and counts executions", async () => {
      const first = await kc.execute("const pixartValue = 41;");
      const second = await kc.execute("pixartValue + 1");
      const n = first.reply.content["execution_count"] as number;
      assert.strictEqual(second.reply.content["execution_count"], n + 1);
      const input = ofType(second.outputs, "execute_input")[0]!;
      assert.deepStrictEqual(input.content, { code: "pixartValue + 1", execution_count: n + 1 });
      const result = ofType(second.outputs, "execute_result")[0]!;
      assert.deepStrictEqual(result.content, { execution_count: n + 1, data: { "text/plain": "42" }, metadata: {} });
    });

    it("sends no execute_result when the last expression is undefined", async () => {
      const { reply, outputs } = await kc.execute("let unused = 1;\nundefined");
      assert.strictEqual(reply.content["status"], "ok");
      assert.strictEqual(ofType(outputs, "execute_result").length, 0);
    });

    it("silent execution publishes nothing and does not count", async () => {
      const before = (await kc.execute("1")).reply.content["execution_count"] as number;
      const silent = await kc.execute("2 + 2", { silent: true });
      assert.strictEqual(silent.reply.content["execution_count"], before);
      assert.deepStrictEqual(silent.outputs, []);
    });

    it("sends stdout and stderr as stream messages", async () => {
      const { outputs } = await kc.execute("console.log('hello, world'); console.error('careful'); process.stdout.write('raw\\n');");
      assert.strictEqual(streamText(outputs, "stdout"), "hello, world\nraw\n");
      assert.strictEqual(streamText(outputs, "stderr"), "careful\n");
    });

    it("supports top-level await", async () => {
      const { outputs } = await kc.execute("const later = await new Promise<string>((r) => setTimeout(() => r('done'), 20));\nlater");
      assert.deepStrictEqual(ofType(outputs, "execute_result")[0]!.content["data"], { "text/plain": "'done'" });
    });

    it("evaluates user_expressions", async () => {
      const { reply } = await kc.execute("const ue = 20;", { user_expressions: { double: "ue * 2", bad: "nope.x" } });
      const exprs = reply.content["user_expressions"] as { [k: string]: any };
      assert.deepStrictEqual(exprs["double"], { status: "ok", data: { "text/plain": "40" }, metadata: {} });
      assert.strictEqual(exprs["bad"].status, "error");
      assert.strictEqual(exprs["bad"].ename, "TSError");
    });

    it("answers `?name` with a page payload", async () => {
      const { reply } = await kc.execute("?Math.max");
      const payload = reply.content["payload"] as Array<{ source: string; data: { [k: string]: string } }>;
      assert.strictEqual(payload.length, 1);
      assert.strictEqual(payload[0]!.source, "page");
      assert.match(payload[0]!.data["text/plain"]!, /max\(/);
    });
  });

  describe("objects that render themselves", () => {
    const pngBytes = [137, 80, 78, 71, 13, 10, 26, 10];

    it("shows a value with [Symbol.for('Jupyter.display')] as execute_result with its full bundle", async () => {
      const { reply, outputs } = await kc.execute(
        [
          "class Heatmap {",
          "  constructor(readonly rows: number) {}",
          "  [Symbol.for('Jupyter.display')]() {",
          "    return {",
          "      'application/vnd.pixart.test+json': { rows: this.rows, values: [0.5, 1] },",
          `      'image/png': new Uint8Array(${JSON.stringify(pngBytes)}),`,
          "      'text/plain': `Heatmap(${this.rows})`,",
          "    };",
          "  }",
          "}",
          "new Heatmap(2)",
        ].join("\n"),
      );
      assert.strictEqual(reply.content["status"], "ok");
      const result = ofType(outputs, "execute_result")[0]!;
      assert.deepStrictEqual(result.content["data"], {
        "application/vnd.pixart.test+json": { rows: 2, values: [0.5, 1] },
        "image/png": Buffer.from(pngBytes).toString("base64"),
        "text/plain": "Heatmap(2)",
      });
      assert.strictEqual(result.content["execution_count"], reply.content["execution_count"]);
    });

    it("awaits an async display method and adds a text/plain fallback when the bundle has none", async () => {
      const { outputs } = await kc.execute(
        "class Later { [Symbol.for('Jupyter.display')]() { return Promise.resolve({ 'text/html': '<b>x</b>' }); } }\nnew Later()",
      );
      const data = ofType(outputs, "execute_result")[0]!.content["data"] as { [k: string]: string };
      assert.strictEqual(data["text/html"], "<b>x</b>");
      assert.strictEqual(data["text/plain"], "Later {}");
    });

    it("reports a display method that returns no bundle as a DisplayError", async () => {
      const { reply } = await kc.execute("({ [Symbol.for('Jupyter.display')]() { return 42; } })");
      assert.strictEqual(reply.content["status"], "error");
      assert.strictEqual(reply.content["ename"], "DisplayError");
    });
  });

  describe("display()", () => {
    it("sends display_data and update_display_data with the display id", async () => {
      const { outputs } = await kc.execute(
        [
          importDisplay,
          "display({ 'text/plain': 'step 1', 'application/json': { step: 1 } }, { displayId: 'progress' });",
          "display({ 'text/plain': 'step 2' }, { displayId: 'progress', update: true, metadata: { note: 1 } });",
        ].join("\n"),
      );
      const shown = ofType(outputs, "display_data")[0]!;
      assert.deepStrictEqual(shown.content, {
        data: { "text/plain": "step 1", "application/json": { step: 1 } },
        metadata: {},
        transient: { display_id: "progress" },
      });
      const updated = ofType(outputs, "update_display_data")[0]!;
      assert.deepStrictEqual(updated.content, { data: { "text/plain": "step 2" }, metadata: { note: 1 }, transient: { display_id: "progress" } });
    });

    it("shows a Displayable and a plain value", async () => {
      const { outputs } = await kc.execute(
        [importDisplay, "await display({ [Symbol.for('Jupyter.display')]: () => ({ 'text/markdown': '# hi' }) });", "await display([1, 2]);"].join("\n"),
      );
      const shown = ofType(outputs, "display_data").map((m) => m.content["data"] as { [k: string]: string });
      assert.strictEqual(shown[0]!["text/markdown"], "# hi");
      assert.deepStrictEqual(shown[1], { "text/plain": "[ 1, 2 ]" });
    });

    it("refuses update without displayId with a DisplayError", async () => {
      const { reply, outputs } = await kc.execute(`${importDisplay}\ndisplay({ 'text/plain': 'x' }, { update: true });`);
      assert.strictEqual(reply.content["ename"], "DisplayError");
      assert.match(String(reply.content["evalue"]), /displayId/);
      assert.strictEqual(ofType(outputs, "update_display_data").length, 0);
    });

    it("refuses bundle keys that are not MIME types", async () => {
      const { reply } = await kc.execute(`${importDisplay}\ndisplay({ 'text/plain': 'x', image: 'y' } as any, {});`);
      // {text/plain, image} is not a bundle (a key is not a MIME type), so it is shown as a value instead.
      assert.strictEqual(reply.content["status"], "ok");
      const bad = await kc.execute(`${importDisplay}\ndisplay({ [Symbol.for('Jupyter.display')]: () => ({ png: 'x', 'text/plain': 'y' }) });`);
      assert.strictEqual(bad.reply.content["ename"], "DisplayError");
    });

    it("sends clear_output", async () => {
      const { outputs } = await kc.execute(`${importDisplay}\nclearOutput({ wait: true });`);
      assert.deepStrictEqual(ofType(outputs, "clear_output")[0]!.content, { wait: true });
    });

    it("keeps tslab's display API working", async () => {
      const { outputs } = await kc.execute("import * as tslab from 'tslab';\ntslab.display.html('<i>tslab</i>');");
      assert.deepStrictEqual(ofType(outputs, "display_data")[0]!.content["data"], { "text/html": "<i>tslab</i>" });
    });
  });

  describe("errors", () => {
    function assertSingleError(outputs: { header: { msg_type: string } }[]): void {
      assert.deepStrictEqual(
        outputs.filter((m) => m.header.msg_type !== "execute_input").map((m) => m.header.msg_type),
        ["error"],
      );
    }

    it("reports a thrown TypeError with ename, evalue and traceback", async () => {
      const { reply, outputs } = await kc.execute("throw new TypeError('bad input');");
      assert.strictEqual(reply.content["status"], "error");
      assert.strictEqual(reply.content["ename"], "TypeError");
      assert.strictEqual(reply.content["evalue"], "bad input");
      assertSingleError(outputs);
      const error = ofType(outputs, "error")[0]!;
      assert.strictEqual(error.content["ename"], "TypeError");
      assert.ok((error.content["traceback"] as string[]).every((l) => typeof l === "string"));
    });

    it("maps a stack frame to the cell line that threw", async () => {
      const { reply } = await kc.execute("function check(n: number): number {\n  if (n > 1) throw new RangeError('too big');\n  return n;\n}\ncheck(5)");
      assert.strictEqual(reply.content["ename"], "RangeError");
      const traceback = (reply.content["traceback"] as string[]).join("\n");
      assert.match(traceback, /at check \(.*cell \[\d+\], line 2/);
    });

    it("reports a type error as TSError with the cell line and column", async () => {
      const { reply, outputs } = await kc.execute("const ok = 1;\nconst n: number = 'text';");
      assert.strictEqual(reply.content["ename"], "TSError");
      assert.match(String(reply.content["evalue"]), /^2:7 - error TS2322: Type 'string' is not assignable to type 'number'\./);
      assertSingleError(outputs);
    });

    it("reports a syntax error as TSError", async () => {
      const { reply } = await kc.execute("let x = );");
      assert.strictEqual(reply.content["ename"], "TSError");
      assert.match(String(reply.content["evalue"]), /^1:9 - error TS1109/);
    });

    it("reports a thrown non-Error value", async () => {
      const { reply } = await kc.execute("throw 'plain string';");
      assert.strictEqual(reply.content["ename"], "Error");
      assert.strictEqual(reply.content["evalue"], "Uncaught 'plain string'");
    });

    it("reports a rejected await", async () => {
      const { reply } = await kc.execute("await Promise.reject(new SyntaxError('async bad'));");
      assert.strictEqual(reply.content["ename"], "SyntaxError");
      assert.strictEqual(reply.content["evalue"], "async bad");
    });

    it("runs the next cell right after an error", async () => {
      await kc.execute("throw new Error('first');");
      const { reply, outputs } = await kc.execute("40 + 2");
      assert.strictEqual(reply.content["status"], "ok");
      assert.deepStrictEqual(ofType(outputs, "execute_result")[0]!.content["data"], { "text/plain": "42" });
    });

    it("aborts only cells already queued behind a failing cell with stop_on_error", async () => {
      const failing = await kc.send("shell", "execute_request", { code: "await new Promise((r) => setTimeout(r, 200)); throw new Error('stop');", silent: false, stop_on_error: true });
      const queued = await kc.send("shell", "execute_request", { code: "'queued'", silent: false, stop_on_error: true });
      assert.strictEqual((await kc.reply(failing)).content["status"], "error");
      assert.strictEqual((await kc.reply(queued)).content["status"], "aborted");
      const after = await kc.execute("'after'");
      assert.strictEqual(after.reply.content["status"], "ok");
    });

    it("does not abort queued cells when stop_on_error is false", async () => {
      const failing = await kc.send("shell", "execute_request", { code: "await new Promise((r) => setTimeout(r, 200)); throw new Error('go on');", silent: false, stop_on_error: false });
      const queued = await kc.send("shell", "execute_request", { code: "'still runs'", silent: false, stop_on_error: true });
      assert.strictEqual((await kc.reply(failing)).content["status"], "error");
      assert.strictEqual((await kc.reply(queued)).content["status"], "ok");
    });

    it("reports errors of background timers on stderr without stopping the kernel", async () => {
      await kc.execute("setTimeout(() => { throw new Error('from a timer'); }, 10);");
      const { reply } = await kc.execute("await new Promise((r) => setTimeout(r, 100)); 1");
      assert.strictEqual(reply.content["status"], "ok");
      const stderr = kc.iopubMessages.filter((m) => m.header.msg_type === "stream" && m.content["name"] === "stderr").map((m) => m.content["text"]).join("");
      assert.match(stderr, /from a timer/);
    });
  });

  describe("complete, inspect, is_complete, history", () => {
    it("completes members and earlier cells' names", async () => {
      const reply = await kc.request("shell", "complete_request", { code: "Math.ab", cursor_pos: 7 });
      assert.deepStrictEqual(reply.content["matches"], ["abs"]);
      assert.strictEqual(reply.content["cursor_start"], 5);
      assert.strictEqual(reply.content["cursor_end"], 7);
      const names = await kc.request("shell", "complete_request", { code: "pixartV", cursor_pos: 7 });
      assert.ok((names.content["matches"] as string[]).includes("pixartValue"));
    });

    it("counts the cursor in code points", async () => {
      const reply = await kc.request("shell", "complete_request", { code: "'😀'; Math.ab", cursor_pos: 12 });
      assert.deepStrictEqual(reply.content["matches"], ["abs"]);
      assert.strictEqual(reply.content["cursor_start"], 10);
    });

    it("inspects a symbol", async () => {
      const reply = await kc.request("shell", "inspect_request", { code: "Math.max", cursor_pos: 8, detail_level: 0 });
      assert.strictEqual(reply.content["found"], true);
      assert.match((reply.content["data"] as { [k: string]: string })["text/plain"]!, /max\(\.\.\.values: number\[\]\): number/);
      const none = await kc.request("shell", "inspect_request", { code: "   ", cursor_pos: 1, detail_level: 0 });
      assert.strictEqual(none.content["found"], false);
    });

    it("answers is_complete", async () => {
      const reply = await kc.request("shell", "is_complete_request", { code: "for (const x of [1]) {" });
      assert.deepStrictEqual(reply.content, { status: "incomplete", indent: "  " });
    });

    it("answers history tail and search", async () => {
      await kc.execute("'history marker'");
      const tail = await kc.request("shell", "history_request", { output: true, raw: true, hist_access_type: "tail", n: 1 });
      const [[session, line, [input, output]]] = tail.content["history"] as [[number, number, [string, string]]];
      assert.strictEqual(session, 1);
      assert.strictEqual(typeof line, "number");
      assert.strictEqual(input, "'history marker'");
      assert.strictEqual(output, "'history marker'");
      const search = await kc.request("shell", "history_request", { output: false, raw: true, hist_access_type: "search", pattern: "'history*", unique: true });
      assert.deepStrictEqual((search.content["history"] as unknown[]).length, 1);
    });
  });

  describe("comms", () => {
    before(async () => {
      const { reply } = await kc.execute(
        [
          importDisplay,
          "registerCommTarget('pixart.test', (comm, open) => {",
          "  comm.send({ opened: open.data });",
          "  comm.onMsg((m) => {",
          "    if ((m.data as any).fail) throw new Error('handler failed');",
          "    comm.send({ got: m.data, buffers: m.buffers.map((b) => Array.from(b)) }, { buffers: [new Uint8Array([9, 8])] });",
          "  });",
          "  comm.onClose((m) => console.log('closed with', JSON.stringify(m.data)));",
          "});",
        ].join("\n"),
      );
      assert.strictEqual(reply.content["status"], "ok", JSON.stringify(reply.content));
    });

    it("calls the registered target on comm_open and sends its replies", async () => {
      const id = await kc.send("shell", "comm_open", { comm_id: "c-1", target_name: "pixart.test", data: { layer: 3 } });
      const outputs = await kc.outputsOf(id);
      const msg = ofType(outputs, "comm_msg")[0]!;
      assert.deepStrictEqual(msg.content, { comm_id: "c-1", data: { opened: { layer: 3 } } });
      const info = await kc.request("shell", "comm_info_request", { target_name: "pixart.test" });
      assert.deepStrictEqual(info.content, { status: "ok", comms: { "c-1": { target_name: "pixart.test" } } });
    });

    it("delivers comm_msg with buffers to the comm and carries buffers back", async () => {
      const id = await kc.send("shell", "comm_msg", { comm_id: "c-1", data: { want: "layer 4" } }, [Buffer.from([1, 2, 3])]);
      const outputs = await kc.outputsOf(id);
      const msg = ofType(outputs, "comm_msg")[0]!;
      assert.deepStrictEqual(msg.content, { comm_id: "c-1", data: { got: { want: "layer 4" }, buffers: [[1, 2, 3]] } });
      assert.deepStrictEqual(msg.buffers, [Buffer.from([9, 8])]);
    });

    it("reports an exception in a comm handler on stderr and keeps the comm", async () => {
      const id = await kc.send("shell", "comm_msg", { comm_id: "c-1", data: { fail: true } });
      const outputs = await kc.outputsOf(id);
      assert.match(streamText(outputs, "stderr"), /handler failed/);
      const info = await kc.request("shell", "comm_info_request", {});
      assert.ok("c-1" in (info.content["comms"] as object));
    });

    it("runs the close handler on comm_close and forgets the comm", async () => {
      const id = await kc.send("shell", "comm_close", { comm_id: "c-1", data: { bye: 1 } });
      const outputs = await kc.outputsOf(id);
      assert.strictEqual(streamText(outputs, "stdout"), 'closed with {"bye":1}\n');
      const info = await kc.request("shell", "comm_info_request", {});
      assert.deepStrictEqual(info.content["comms"], {});
    });

    it("closes a comm opened for an unknown target", async () => {
      const id = await kc.send("shell", "comm_open", { comm_id: "c-2", target_name: "nobody", data: {} });
      const outputs = await kc.outputsOf(id);
      const close = ofType(outputs, "comm_close")[0]!;
      assert.strictEqual(close.content["comm_id"], "c-2");
    });

    it("opens a comm from the kernel and receives the frontend's messages", async () => {
      const { outputs } = await kc.execute(
        [
          importDisplay,
          "const toFrontend = openComm('frontend.target', { hello: 'frontend' }, { metadata: { v: 1 } });",
          "toFrontend.onMsg((m) => { console.log('frontend said', JSON.stringify(m.data)); toFrontend.close({ done: true }); });",
        ].join("\n"),
      );
      const open = ofType(outputs, "comm_open")[0]!;
      assert.strictEqual(open.content["target_name"], "frontend.target");
      assert.deepStrictEqual(open.content["data"], { hello: "frontend" });
      assert.deepStrictEqual(open.metadata, { v: 1 });
      const commId = String(open.content["comm_id"]);
      const id = await kc.send("shell", "comm_msg", { comm_id: commId, data: { layer: 7 } });
      const replies = await kc.outputsOf(id);
      assert.strictEqual(streamText(replies, "stdout"), 'frontend said {"layer":7}\n');
      assert.deepStrictEqual(ofType(replies, "comm_close")[0]!.content, { comm_id: commId, data: { done: true } });
    });

    it("refuses to send on a closed comm with a CommError", async () => {
      const { reply } = await kc.execute(`${importDisplay}\nconst once = openComm('frontend.target');\nonce.close();\nonce.send({});`);
      assert.strictEqual(reply.content["ename"], "CommError");
    });

    it("refuses data that is not JSON with a CommError", async () => {
      const { reply } = await kc.execute(`${importDisplay}\nconst loop: any = {}; loop.self = loop;\nopenComm('frontend.target', loop);`);
      assert.strictEqual(reply.content["ename"], "CommError");
    });
  });

  describe("sockets", () => {
    it("answers heartbeats while a cell blocks the main thread", async () => {
      const hb = new zmq.Request({ linger: 0, receiveTimeout: 1000 });
      hb.connect(endpoint(kc.info, "hb"));
      try {
        const busy = kc.execute("const until = Date.now() + 1500; while (Date.now() < until) {}");
        await new Promise((r) => setTimeout(r, 300));
        const started = Date.now();
        await hb.send("ping");
        const [echo] = await hb.receive();
        assert.strictEqual(echo!.toString(), "ping");
        assert.ok(Date.now() - started < 1000);
        await busy;
      } finally {
        hb.close();
      }
    });

    it("ignores a message with a wrong signature and keeps serving", async () => {
      const parts = [{ msg_id: "forged", msg_type: "execute_request", session: "s", username: "u", date: "", version: "5.3" }, {}, {}, { code: "1" }].map((p) =>
        Buffer.from(JSON.stringify(p)),
      );
      await kc.sendRaw([Buffer.from("<IDS|MSG>"), Buffer.from("0".repeat(64)), ...parts]);
      const { reply } = await kc.execute("'still here'");
      assert.strictEqual(reply.content["status"], "ok");
      assert.ok(!kc.iopubMessages.some((m) => m.parent_header.msg_id === "forged"));
      assert.match(kc.stderrChunks.join(""), /signature does not match/);
    });
  });

  describe("shutdown", () => {
    it("replies on control and the process exits with status 0", async () => {
      const reply = await kc.request("control", "shutdown_request", { restart: false });
      assert.deepStrictEqual(reply.content, { status: "ok", restart: false });
      assert.strictEqual(await kc.waitExit(10000), 0);
    });
  });
});
