/**
 * The kernel: shell requests are handled one at a time in arrival order, each between `busy` and `idle` statuses;
 * control requests (interrupt, shutdown, kernel_info) are handled as they arrive. Output produced by cell code
 * (stdout, stderr, display) goes to the request being executed, or to the last one when it comes later.
 */
import { DisplayError, DisplayMessage, KernelBridge, setKernelBridge, toMimeBundle } from "../../src/display/display";
import { InterruptedError } from "../../src/display/interrupt";
import { installLiveProgress } from "../../src/display/progress";
import { setDefaultProgress } from "../../src/runtime/progress";
import { CommManager } from "./comms";
import { ConnectionInfo } from "./connection";
import { compileErrorContent, ErrorContent, heapExhaustedContent, interruptedContent, isInterruptError, memoryStoppedContent, runtimeErrorContent } from "./errors";
import { CellExecutor, CellOutcome } from "./executor";
import { History } from "./history";
import { CellPhase, heapExhaustedHook } from "./io-worker";
import { isComplete } from "./is-complete";
import { kernelInfo } from "./kernel-info";
import { log } from "./log";
import { memoryCommHandler, memoryCommTarget } from "./memory-comm";
import { Messenger, StreamName } from "./messenger";
import { pagerQuery } from "./pager";
import { KernelSockets, RequestChannel } from "./sockets";
import { installStdioCapture } from "./stdio";
import { codePointsToUtf16, utf16ToCodePoints } from "./text";
import { UsageReporter } from "./usage";
import { JsonObject, Message } from "./wire";

export interface KernelOptions {
  connection: ConnectionInfo;
  /** The notebook's directory: module resolution and local .ts imports start here. Defaults to the cwd. */
  rootDir?: string;
  /**
   * After an interrupt, how long an async cell may take to stop by itself (e.g. a pipeline that checks
   * currentCellSignal() between steps) before the kernel stops waiting for it.
   */
  interruptGraceMs?: number;
  /** Called after a shutdown_request has been answered and the sockets are closed. */
  onShutdown?: (restart: boolean) => void;
}

interface ExecuteRequest {
  code?: unknown;
  silent?: unknown;
  store_history?: unknown;
  user_expressions?: unknown;
  stop_on_error?: unknown;
}

interface RunningCell {
  /** Sequence number shared with the I/O worker, which raises SIGINT on its behalf. */
  seq: number;
  /** The execute_request that runs the cell. */
  request: Message;
  executionCount: number;
  /** JS heap use when the cell started (garbage included). */
  heapAtStart: number;
  controller: AbortController;
  interrupted: boolean;
}

type ExecuteReply = JsonObject & { status: "ok" | "error" };

const phases = { compiling: CellPhase.Compiling, "running-sync": CellPhase.RunningSync, idle: CellPhase.Idle } as const;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Kernel implements KernelBridge {
  private readonly messenger: Messenger;
  private readonly executor: CellExecutor;
  private readonly comms: CommManager;
  private readonly history = new History();
  private readonly usage = new UsageReporter();
  private readonly shellQueue: Message[] = [];
  private readonly aborted = new WeakSet<Message>();
  private draining = false;
  private executionCount = 0;
  /** The request whose output area receives stdout, stderr and display calls. */
  private outputParent: Message | undefined;
  private running: RunningCell | undefined;
  private lastSignalController = new AbortController();
  private cellSeq = 0;
  private stopped = false;
  private readonly graceMs: number;

  private constructor(
    private readonly sockets: KernelSockets,
    private readonly options: KernelOptions,
  ) {
    this.messenger = new Messenger(sockets);
    this.graceMs = options.interruptGraceMs ?? 1000;
    this.executor = new CellExecutor({
      rootDir: options.rootDir ?? process.cwd(),
      writeStderr: (text) => this.writeStream("stderr", text),
      onPhase: (phase) => sockets.setCellPhase(phases[phase], this.running?.seq ?? -1),
    });
    this.comms = new CommManager({
      messenger: this.messenger,
      currentParent: () => this.outputParent,
      reportError: (where, e) => this.reportBackgroundError(where, e),
    });
  }

  /** Binds the sockets, installs stdio capture and the display bridge, and starts serving. */
  static async start(options: KernelOptions): Promise<Kernel> {
    const sockets = await KernelSockets.bind(options.connection);
    const kernel = new Kernel(sockets, options);
    installStdioCapture((name, text) => kernel.writeStream(name, text));
    setKernelBridge(kernel);
    installLiveProgress(); // pipeline calls show live progress unless they pass progress: false
    kernel.installTslabDisplay();
    kernel.comms.registerTarget(memoryCommTarget, memoryCommHandler({ busy: () => kernel.running !== undefined }));
    sockets.onSubscribe((topic) => void kernel.messenger.welcome(topic));
    sockets.listen((msg, channel, signalledCell) => kernel.onMessage(msg, channel, signalledCell));
    (globalThis as Record<symbol, unknown>)[heapExhaustedHook] = (cell: number, limit: number) => kernel.replyHeapExhausted(cell, limit);
    kernel.executor.warmUp();
    return kernel;
  }

  writeStream(name: StreamName, text: string): void {
    this.messenger.stream(name, text, this.outputParent);
  }

  /** Errors from code that runs outside a request (timers, comm handlers): shown in the current output area. */
  reportBackgroundError(where: string, e: unknown): void {
    const { ename, evalue, traceback } = runtimeErrorContent(e, this.executor.compiledCells());
    log.warn(`${where}: ${ename}: ${evalue}`);
    this.writeStream("stderr", `${where} failed:\n${traceback.join("\n")}\n`);
  }

  /**
   * Run by the I/O worker (through the inspector, in the middle of the cell's code) when the JS heap use passed `limit`
   * while cell `cell` runs where the kernel cannot stop it. Garbage does not count, nor what earlier cells keep: after a
   * collection (the kernel runs with --expose-gc), if the heap is still over the limit and larger than when the cell
   * started, sends the cell's error and reply and returns the heap use; the worker then ends the process.
   */
  private replyHeapExhausted(cell: number, limit: number): number | undefined {
    const running = this.running;
    if (!running || running.seq !== cell) return undefined;
    (globalThis as { gc?: () => void }).gc?.();
    const used = process.memoryUsage().heapUsed;
    if (used < limit || used <= running.heapAtStart) return undefined;
    const error = heapExhaustedContent(used, limit);
    this.messenger.flushStreams();
    void this.messenger.publish("error", error, running.request);
    void this.messenger.reply(running.request, "shell", "execute_reply", { status: "error", execution_count: running.executionCount, ...error });
    void this.messenger.status("idle", running.request);
    return used;
  }

  // --- KernelBridge (used by src/display) ---

  sendDisplay(message: DisplayMessage, update: boolean): void {
    if (update && !message.transient.display_id) {
      throw new DisplayError("an update_display_data needs transient.display_id (the output to replace)");
    }
    try {
      JSON.stringify(message); // a typed error for the caller rather than a TypeError from deep inside encode()
    } catch (e) {
      throw new DisplayError(`display data is not JSON-serializable: ${(e as Error).message}`);
    }
    void this.messenger.publish(update ? "update_display_data" : "display_data", message, this.outputParent);
  }

  clearOutput(wait: boolean): void {
    void this.messenger.publish("clear_output", { wait }, this.outputParent);
  }

  registerCommTarget(name: string, handler: Parameters<KernelBridge["registerCommTarget"]>[1]): void {
    this.comms.registerTarget(name, handler);
  }

  unregisterCommTarget(name: string): void {
    this.comms.unregisterTarget(name);
  }

  openComm(targetName: string, data: unknown, options: Parameters<KernelBridge["openComm"]>[2]): ReturnType<KernelBridge["openComm"]> {
    return this.comms.open(targetName, data, options);
  }

  cellSignal(): AbortSignal {
    return this.lastSignalController.signal;
  }

  /** `import * as tslab from "tslab"` keeps working: its display functions end up in sendDisplay. */
  private installTslabDisplay(): void {
    const tslabJupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
    tslabJupyter.lastWriteDisplayData = (msg: DisplayMessage, update: boolean) => this.sendDisplay(msg, update);
  }

  // --- interrupts ---

  /**
   * Interrupts the running cell: its signal aborts at once (cooperative code stops at its next check); an async cell
   * that has not finished after the grace period is abandoned. Synchronous cell code is stopped by SIGINT itself
   * (breakOnSigint), before this runs. With no cell running, the signal of the last cell aborts, which stops
   * background work that cell left running.
   */
  interrupt(): void {
    const cell = this.running;
    if (!this.lastSignalController.signal.aborted) this.lastSignalController.abort(new InterruptedError());
    if (!cell || cell.interrupted) return;
    cell.interrupted = true;
    const timer = setTimeout(() => {
      if (this.running === cell) this.executor.interrupt();
    }, this.graceMs);
    timer.unref();
  }

  // --- dispatch ---

  private onMessage(msg: Message, channel: RequestChannel, signalledCell: number): void {
    if (this.stopped) return;
    if (msg.header.msg_type === "interrupt_request") this.onInterruptRequest(signalledCell);
    if (channel === "shell") {
      this.shellQueue.push(msg);
      void this.drainShell();
    } else if (channel === "control") {
      void this.handleRequest(msg, "control");
    } else {
      log.warn(`unexpected ${msg.header.msg_type} on stdin ignored (input requests are not supported)`);
    }
  }

  /**
   * Interrupts act at once, not after the requests queued before them. If the I/O worker raised SIGINT for a cell,
   * that cell is interrupted here only if it still runs (the signal can land just after the synchronous part ended);
   * a cell stopped by the signal has already finished, and a later cell must not be hit.
   */
  private onInterruptRequest(signalledCell: number): void {
    if (signalledCell < 0) this.interrupt();
    else if (this.running?.seq === signalledCell && !this.running.interrupted) this.interrupt();
  }

  private async drainShell(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.shellQueue.length > 0 && !this.stopped) await this.handleRequest(this.shellQueue.shift()!, "shell");
    } finally {
      this.draining = false;
    }
  }

  private async handleRequest(msg: Message, channel: RequestChannel): Promise<void> {
    void this.messenger.status("busy", msg);
    let shutdown: boolean | undefined;
    const replied = { done: false };
    try {
      shutdown = await this.route(msg, channel, replied);
    } catch (e) {
      log.error(`${msg.header.msg_type} failed:`, e);
      // Every request gets its reply, whatever went wrong, or the client waits for ever (the cell never ends).
      if (!replied.done) await this.replyWithError(msg, channel, e);
    } finally {
      this.messenger.flushStreams();
      await this.messenger.status("idle", msg);
    }
    if (shutdown !== undefined) await this.stop(shutdown);
  }

  /** An error reply for a request whose handling failed (the kernel's own fault, or a value it could not handle). */
  private async replyWithError(msg: Message, channel: RequestChannel, e: unknown): Promise<void> {
    const type = msg.header.msg_type;
    if (!type.endsWith("_request")) return;
    const error = runtimeErrorContent(e, []);
    const content = type === "execute_request" ? { status: "error", execution_count: this.executionCount, ...error } : { status: "error", ...error };
    try {
      if (type === "execute_request") void this.messenger.publish("error", error, msg);
      await this.messenger.reply(msg, channel, type.replace(/_request$/, "_reply"), content);
    } catch (inner) {
      log.error(`could not send the error reply to ${type}:`, inner);
    }
  }

  /** Handles one request; returns the restart flag when it was a shutdown_request. */
  private async route(msg: Message, channel: RequestChannel, replied: { done: boolean }): Promise<boolean | undefined> {
    const reply = (type: string, content: object): Promise<void> => {
      replied.done = true;
      return this.messenger.reply(msg, channel, type, content);
    };
    const content = msg.content as JsonObject;
    switch (msg.header.msg_type) {
      case "execute_request":
        await reply("execute_reply", await this.execute(msg));
        return undefined;
      case "kernel_info_request":
        await reply("kernel_info_reply", kernelInfo());
        return undefined;
      case "complete_request":
        await reply("complete_reply", this.complete(String(content["code"] ?? ""), content["cursor_pos"]));
        return undefined;
      case "inspect_request":
        await reply("inspect_reply", this.inspect(String(content["code"] ?? ""), content["cursor_pos"]));
        return undefined;
      case "is_complete_request":
        await reply("is_complete_reply", isComplete(String(content["code"] ?? "")));
        return undefined;
      case "history_request":
        await reply("history_reply", { status: "ok", history: this.history.query(content) });
        return undefined;
      case "comm_info_request": {
        const target = typeof content["target_name"] === "string" ? content["target_name"] : undefined;
        await reply("comm_info_reply", { status: "ok", comms: this.comms.info(target) });
        return undefined;
      }
      case "comm_open":
      case "comm_msg":
      case "comm_close":
        await this.handleComm(msg);
        return undefined;
      case "interrupt_request":
        // Already acted on in onMessage (or by SIGINT from the I/O worker); only the reply is left.
        await reply("interrupt_reply", { status: "ok" });
        return undefined;
      case "usage_request":
        // jupyter-resource-usage's kernel panel (ipykernel answers it too): process and host memory and CPU.
        await reply("usage_reply", this.usage.reply());
        return undefined;
      case "connect_request":
        await reply("connect_reply", this.ports());
        return undefined;
      case "shutdown_request": {
        const restart = content["restart"] === true;
        await reply("shutdown_reply", { status: "ok", restart });
        return restart;
      }
      default:
        log.warn(`unsupported message type ${msg.header.msg_type} on ${channel} ignored`);
        return undefined;
    }
  }

  private ports(): JsonObject {
    const c = this.options.connection;
    return {
      status: "ok",
      shell_port: c.shell_port,
      iopub_port: c.iopub_port,
      stdin_port: c.stdin_port,
      control_port: c.control_port,
      hb_port: c.hb_port,
    };
  }

  private async handleComm(msg: Message): Promise<void> {
    const previous = this.outputParent;
    this.outputParent = msg;
    try {
      if (msg.header.msg_type === "comm_open") await this.comms.handleOpen(msg);
      else if (msg.header.msg_type === "comm_msg") await this.comms.handleMsg(msg);
      else await this.comms.handleClose(msg);
    } finally {
      this.messenger.flushStreams();
      this.outputParent = previous;
    }
  }

  // --- execute ---

  private async execute(msg: Message): Promise<ExecuteReply> {
    if (this.aborted.has(msg)) return { status: "aborted" } as unknown as ExecuteReply;
    const req = msg.content as ExecuteRequest;
    const code = typeof req.code === "string" ? req.code : "";
    const silent = req.silent === true;
    const storeHistory = !silent && req.store_history !== false;
    if (storeHistory) this.executionCount++;
    const count = this.executionCount;
    if (!silent) void this.messenger.publish("execute_input", { code, execution_count: count }, msg);
    if (storeHistory) this.history.add(count, code);
    this.outputParent = msg;

    const page = pagerQuery(code);
    const result = page ? this.page(page) : await this.runCell(msg, code, storeHistory ? count : null, silent);
    if (result.status === "ok" && result.textPlain !== undefined && storeHistory) this.history.setOutput(count, result.textPlain);
    if (result.status === "error") {
      void this.messenger.publish("error", result.error, msg);
      if (req.stop_on_error !== false) await this.abortQueuedExecutions();
      return { status: "error", execution_count: count, ...result.error };
    }
    const userExpressions = await this.evaluateUserExpressions(req.user_expressions);
    return { status: "ok", execution_count: count, payload: result.payload ?? [], user_expressions: userExpressions };
  }

  /** After a failed cell, requests that were already waiting (e.g. "Run All") are answered "aborted", as ipykernel does. */
  private async abortQueuedExecutions(): Promise<void> {
    await tick(); // let messages that have already arrived reach the queue
    for (const queued of this.shellQueue) if (queued.header.msg_type === "execute_request") this.aborted.add(queued);
  }

  private page(query: { code: string; cursor: number }): CellResult {
    const text = this.executor.inspect(query.code, query.cursor) ?? `No information for ${query.code.trim()}`;
    return { status: "ok", payload: [{ source: "page", data: { "text/plain": text }, start: 0 }] };
  }

  private async runCell(request: Message, code: string, executionCount: number | null, silent: boolean): Promise<CellResult> {
    const cell: RunningCell = {
      seq: ++this.cellSeq,
      request,
      executionCount: this.executionCount,
      heapAtStart: process.memoryUsage().heapUsed,
      controller: new AbortController(),
      interrupted: false,
    };
    this.running = cell;
    this.lastSignalController = cell.controller;
    this.sockets.setRunningCell(cell.seq);
    try {
      const outcome = await this.runSafely(code, executionCount);
      return await this.present(outcome, { code, cell, executionCount, silent });
    } finally {
      this.running = undefined;
      this.sockets.setRunningCell(0);
    }
  }

  private async runSafely(code: string, executionCount: number | null): Promise<CellOutcome> {
    try {
      return await this.executor.run(code, executionCount);
    } catch (e) {
      return { status: "error", error: e };
    }
  }

  private async present(
    outcome: CellOutcome,
    { code, cell, executionCount, silent }: { code: string; cell: RunningCell; executionCount: number | null; silent: boolean },
  ): Promise<CellResult> {
    const cells = this.executor.compiledCells();
    if (outcome.status === "compile-error") return { status: "error", error: compileErrorContent(outcome.diagnostics, code) };
    if (outcome.status === "error") {
      if (isInterruptError(outcome.error) && this.sockets.stoppedForMemory(cell.seq)) return { status: "error", error: memoryStoppedContent() };
      const interrupted = cell.interrupted || isInterruptError(outcome.error);
      return {
        status: "error",
        error: interrupted ? interruptedContent(outcome.error, cells, this.graceMs) : runtimeErrorContent(outcome.error, cells),
      };
    }
    if (!outcome.hasValue || silent) return { status: "ok" };
    try {
      const data = await toMimeBundle(outcome.value);
      void this.messenger.publish("execute_result", { execution_count: executionCount ?? this.executionCount, data, metadata: {} }, this.outputParent);
      const text = data["text/plain"];
      return { status: "ok", textPlain: typeof text === "string" ? text : undefined };
    } catch (e) {
      return { status: "error", error: runtimeErrorContent(e, cells) };
    }
  }

  private async evaluateUserExpressions(expressions: unknown): Promise<JsonObject> {
    const out: JsonObject = {};
    if (expressions === null || typeof expressions !== "object") return out;
    for (const [name, expr] of Object.entries(expressions as JsonObject)) {
      const outcome = await this.runSafely(String(expr), null);
      const cells = this.executor.compiledCells();
      if (outcome.status === "compile-error") out[name] = { status: "error", ...compileErrorContent(outcome.diagnostics, String(expr)) };
      else if (outcome.status === "error") out[name] = { status: "error", ...runtimeErrorContent(outcome.error, cells) };
      else {
        try {
          const data = outcome.hasValue ? await toMimeBundle(outcome.value) : { "text/plain": "undefined" };
          out[name] = { status: "ok", data, metadata: {} };
        } catch (e) {
          out[name] = { status: "error", ...runtimeErrorContent(e, cells) };
        }
      }
    }
    return out;
  }

  // --- complete / inspect ---

  private complete(code: string, cursorPos: unknown): JsonObject {
    const cursor = codePointsToUtf16(code, typeof cursorPos === "number" ? cursorPos : code.length);
    const info = this.executor.complete(code, cursor);
    const start = utf16ToCodePoints(code, info.start);
    const end = utf16ToCodePoints(code, info.end);
    const types = info.candidates.map((text) => ({ start, end, text, type: info.kinds.get(text) ?? "" }));
    return {
      status: "ok",
      matches: info.candidates,
      cursor_start: start,
      cursor_end: end,
      metadata: { _jupyter_types_experimental: types },
    };
  }

  private inspect(code: string, cursorPos: unknown): JsonObject {
    const cursor = codePointsToUtf16(code, typeof cursorPos === "number" ? cursorPos : code.length);
    const text = this.executor.inspect(code, cursor) ?? (cursor > 0 ? this.executor.inspect(code, cursor - 1) : undefined);
    if (text === undefined) return { status: "ok", found: false, data: {}, metadata: {} };
    return { status: "ok", found: true, data: { "text/plain": text }, metadata: {} };
  }

  // --- shutdown ---

  /**
   * The process is exiting now (process.exit() from a cell): flushes the output and closes the sockets synchronously,
   * so that the exit is clean instead of an abort from the zeromq addon's teardown.
   */
  closeForExit(): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.messenger.flushStreams();
    } finally {
      this.sockets.closeSync();
    }
  }

  private async stop(restart: boolean): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    setKernelBridge(undefined);
    setDefaultProgress(undefined);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the reply and idle status leave the queues
    this.executor.close();
    await this.sockets.close();
    this.options.onShutdown?.(restart);
  }
}

type CellResult =
  | { status: "ok"; textPlain?: string; payload?: JsonObject[] }
  | { status: "error"; error: ErrorContent };
