/**
 * A worker thread that owns the heartbeat (REP, echoes every message) and the control socket (ROUTER), so both keep
 * working while a cell blocks the main thread. Control messages are passed to the main thread as raw frames.
 *
 * An interrupt_request that arrives while the main thread has been running synchronous cell code for a while (shared
 * state says so) also raises SIGINT: that breaks the cell (vm breakOnSigint), which would otherwise keep the main
 * thread from ever reading the request. While the cell is still being compiled, the worker waits for the compiler
 * first, because a SIGINT outside the vm call would not break anything. In every other case the main thread handles
 * the request itself when it reads it. The message says which cell was signalled, so that the main thread can still
 * interrupt that cell if the signal landed just after its synchronous part ended.
 *
 * Nothing can stop some code from another thread: a microtask loop (`const spin = () => Promise.reject().catch(spin)`)
 * or synchronous code after an `await` run outside the vm call that SIGINT breaks, and V8's TerminateExecution through
 * the inspector was measured to work in 1 of 5 tries against that loop (node's promise-rejection hook swallows it) and
 * to corrupt node's async-hook stack when it did. So, when the main thread has not taken an interrupt or shutdown
 * request after `stuckAfterMs`, is not compiling, and has not run a timer in all that time, the worker answers the request itself with an error naming
 * the cause, writes the same to stderr, and ends the process (SIGKILL: the main thread cannot run an exit handler),
 * so that the client's restart gives the user a working kernel.
 *
 * Memory: a cell that fills the JS heap would end the process with V8's fatal error. While synchronous cell code runs,
 * the worker reads the process's anonymous RSS every 200 ms; above `memoryStopBytes` (90 % of the main thread's heap
 * limit over what the kernel used at start) it stops the cell with SIGINT like an interrupt, and the main thread
 * reports a MemoryLimitError instead of an InterruptedError. Code that runs after an `await` (or in a microtask loop)
 * is outside the vm call SIGINT breaks: while a cell runs anything but synchronous cell code, the worker asks the main
 * isolate for its JS heap use every 100 ms through an inspector session (the inspector answers between two steps of
 * the main thread's JS, even while that code never yields), and above `heapStopBytes` (90 % of the heap limit) it has
 * the main thread collect garbage and, if the heap is still over the limit, send the cell's MemoryLimitError reply
 * (an inspector Runtime.evaluate runs there too); then it writes the cause to stderr and ends the process (SIGKILL),
 * so that the client shows why and Jupyter restarts the kernel instead of V8 ending it with a fatal error and no reply. An allocation V8 cannot make in one step still ends the
 * kernel with V8's message on stderr.
 */
import * as fs from "fs";
import { Session } from "inspector";
import { getHeapStatistics } from "v8";
import { isMainThread, parentPort, Worker, workerData } from "worker_threads";
import * as zmq from "zeromq";
import { heapExhaustedMessage } from "./errors";
import { log } from "./log";
import { decode, encode, Message, newHeader, Signer } from "./wire";

interface IoWorkerData {
  heartbeatEndpoint: string;
  controlEndpoint: string;
  signatureScheme: string;
  key: string;
  /** Int32s at the STATE_* indices below. */
  busyFlag: SharedArrayBuffer;
  /** How long the main thread may leave an interrupt or shutdown request untaken before the kernel ends itself. */
  stuckAfterMs: number;
  /** Anonymous RSS at which running synchronous cell code is stopped as a MemoryLimitError. */
  memoryStopBytes: number;
  /** Main-thread JS heap use at which a cell running anything but synchronous code ends the kernel (see the top). */
  heapStopBytes: number;
}

/** What the main thread is doing with the current cell, as far as interrupts are concerned. */
export enum CellPhase {
  Idle = 0,
  Compiling = 1,
  /** Inside tslab's vm.runInThisContext(breakOnSigint), where SIGINT stops the code. */
  RunningSync = 2,
}

/**
 * Shared Int32 slots: the main thread's CellPhase, its current cell, whether the worker closed its sockets, and how
 * many control messages the main thread has taken.
 */
const STATE_PHASE = 0;
const STATE_CELL = 1;
const STATE_CLOSED = 2;
const STATE_TAKEN = 3;
/** The cell the worker stopped for using too much memory, or 0. */
const STATE_MEMORY_STOP = 4;
/** Bumped by a main-thread timer: it stands still only while the main thread never gets back to its event loop. */
const STATE_TICKS = 5;
/** The cell being executed (compiled, run, awaited), or 0. */
const STATE_RUNNING_CELL = 6;
const STATE_SLOTS = 7;

/**
 * Called on the main thread (inspector Runtime.evaluate) with the running cell's number and the heap limit when the
 * heap use passed it outside synchronous cell code: collects garbage and, if the heap is still over the limit, sends
 * the cell's error reply and returns the heap use (then the worker ends the kernel); else returns undefined.
 */
export const heapExhaustedHook = Symbol.for("pixart-ts.kernel.heapExhausted");

/** This process's anonymous RSS (heaps, not mapped files), bytes. */
function anonymousRss(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Default for IoWorkerData.memoryStopBytes: the anonymous RSS now plus 90 % of the main thread's JS heap limit
 * (PIXART_KERNEL_MEMORY_STOP_MB: megabytes over the RSS now instead).
 */
export function memoryStopBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const mb = Number(env["PIXART_KERNEL_MEMORY_STOP_MB"]);
  const margin = Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : 0.9 * getHeapStatistics().heap_size_limit;
  return anonymousRss() + margin;
}

/**
 * Default for IoWorkerData.heapStopBytes: 90 % of the main thread's JS heap limit (PIXART_KERNEL_MEMORY_STOP_MB:
 * megabytes over the heap use now instead). Called on the main thread.
 */
export function heapStopBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const mb = Number(env["PIXART_KERNEL_MEMORY_STOP_MB"]);
  return Number.isFinite(mb) && mb > 0 ? process.memoryUsage().heapUsed + mb * 2 ** 20 : 0.9 * getHeapStatistics().heap_size_limit;
}

/** Stops synchronous cell code (SIGINT) once the process's anonymous RSS passes `limit` (see the top). */
function guardMemory(state: Int32Array, limit: number): void {
  setInterval(() => {
    if (Atomics.load(state, STATE_PHASE) !== CellPhase.RunningSync) return;
    const cell = Atomics.load(state, STATE_CELL);
    if (Atomics.load(state, STATE_MEMORY_STOP) === cell || anonymousRss() < limit) return;
    Atomics.store(state, STATE_MEMORY_STOP, cell);
    process.kill(process.pid, "SIGINT");
  }, 200).unref();
}

/**
 * Ends the kernel when a running cell fills the main thread's JS heap outside synchronous cell code (see the top).
 * The heap use the inspector reports counts garbage (e.g. what a stopped cell left), so above the limit the main
 * thread's hook collects garbage first and answers whether the heap is still over it; only then does it send the
 * cell's reply, and the worker end the process. The session is open only while a cell runs (a session still open at
 * exit makes Node wait for "the debugger to disconnect").
 */
function guardHeap(state: Int32Array, limit: number): void {
  let session: Session | undefined;
  let busy = false;
  let ending = false;
  /** After the hook found the heap below the limit once garbage was collected, when to ask it again. */
  let quietUntil = 0;
  const askHook = (cell: number): void => {
    busy = true;
    const expression = `globalThis[Symbol.for(${JSON.stringify(heapExhaustedHook.description)})]?.(${cell}, ${limit})`;
    session!.post("Runtime.evaluate", { expression, returnByValue: true }, (err, answer) => {
      busy = false;
      const used = (answer as { result?: { value?: unknown } } | undefined)?.result?.value;
      if (err || typeof used !== "number") {
        quietUntil = Date.now() + 2000;
        return;
      }
      ending = true;
      fs.writeSync(2, `pixart-ts kernel: ${heapExhaustedMessage(used, limit)}\n`);
      // The reply is with zeromq's I/O thread; give it a moment to leave.
      setTimeout(() => process.kill(process.pid, "SIGKILL"), 300);
    });
  };
  setInterval(() => {
    const cell = Atomics.load(state, STATE_RUNNING_CELL);
    if (cell <= 0) {
      session?.disconnect();
      session = undefined;
      return;
    }
    if (busy || ending || Atomics.load(state, STATE_PHASE) === CellPhase.RunningSync) return;
    try {
      if (!session) {
        session = new Session();
        session.connectToMainThread();
      }
    } catch (e) {
      log.warn("no inspector session to the main thread: a cell that fills the heap after an await ends the kernel without a reply", e);
      ending = true;
      return;
    }
    busy = true;
    session.post("Runtime.getHeapUsage", (err, usage) => {
      busy = false;
      const used = (usage as { usedSize?: number } | undefined)?.usedSize ?? 0;
      if (err || used < limit || Date.now() < quietUntil || ending || !session) return;
      if (Atomics.load(state, STATE_RUNNING_CELL) === cell && Atomics.load(state, STATE_PHASE) !== CellPhase.RunningSync) askHook(cell);
    });
  }, 100).unref();
}

/** Default for IoWorkerData.stuckAfterMs; PIXART_KERNEL_STUCK_MS overrides it (tests use a shorter one). */
export function stuckAfterMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env["PIXART_KERNEL_STUCK_MS"]);
  return Number.isFinite(ms) && ms >= 500 ? ms : 10_000;
}

/** `signalledCell`: the sequence number of the cell SIGINT was raised for, or -1. */
type ToMain = { kind: "ready" } | { kind: "control"; frames: Uint8Array[]; signalledCell: number };
type ToWorker = { kind: "send"; frames: Uint8Array[] } | { kind: "close" };

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

async function echoHeartbeats(sock: zmq.Reply): Promise<void> {
  try {
    for await (const frames of sock) await sock.send(frames);
  } catch (e) {
    if (!sock.closed) throw e;
  }
}

function decodeOrUndefined(frames: Buffer[], signer: Signer): Message | undefined {
  try {
    return decode(frames, signer);
  } catch {
    return undefined; // the main thread reports malformed messages
  }
}

/** Resolves when state[0] is no longer `value`, or after `timeoutMs`. */
async function waitWhile(state: Int32Array, value: CellPhase, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(state, 0) === value && Date.now() < deadline) {
    const waiting = Atomics.waitAsync(state, 0, value, Math.max(1, deadline - Date.now()));
    if (waiting.async) await waiting.value;
  }
}

/**
 * Synchronous cell code shorter than this is left to finish; the main thread then handles the request. A SIGINT that
 * lands just after the vm call is not delivered to process.on("SIGINT") and can break the next vm call instead, so
 * the worker raises it only into code that has been running for a while (an endless or very long loop).
 */
const signalAfterMs = 100;

/**
 * Raises SIGINT when the main thread runs (long) synchronous cell code, after waiting out a compilation; returns the
 * signalled cell's sequence number, or -1.
 */
async function signalIfRunningSync(state: Int32Array): Promise<number> {
  await waitWhile(state, CellPhase.Compiling, Infinity);
  await waitWhile(state, CellPhase.RunningSync, signalAfterMs);
  const cell = Atomics.load(state, 1);
  if (Atomics.load(state, 0) !== CellPhase.RunningSync) return -1;
  process.kill(process.pid, "SIGINT");
  return cell;
}

/**
 * After `stuckAfterMs`, if the main thread still has not taken control message number `posted` (and is not compiling a
 * cell, which can take long on a loaded machine), answers `request` itself and ends the process (see the top).
 */
function watchTaken(sock: zmq.Router, signer: Signer, state: Int32Array, request: Message, posted: number, stuckAfterMs: number): void {
  let ticks = Atomics.load(state, STATE_TICKS);
  const check = (): void => {
    if (Atomics.load(state, STATE_TAKEN) >= posted || sock.closed) return;
    // Not stuck while compiling, or when the main thread ran its timer since the last look (it is slow, e.g. on a
    // loaded machine, but gets back to its event loop, so it will take the message).
    const now = Atomics.load(state, STATE_TICKS);
    const phase = Atomics.load(state, STATE_PHASE);
    if (phase === CellPhase.Compiling || phase === CellPhase.RunningSync || now !== ticks) {
      // An interrupt that arrived just before the cell's synchronous code started was not signalled: do it now.
      if (phase === CellPhase.RunningSync && request.header.msg_type === "interrupt_request") process.kill(process.pid, "SIGINT");
      ticks = now;
      setTimeout(check, stuckAfterMs).unref();
      return;
    }
    const type = request.header.msg_type;
    const evalue =
      `the kernel's main thread has not taken this ${type} for ${(stuckAfterMs / 1000).toFixed(0)} s: code that never yields to ` +
      "the event loop and cannot be interrupted (a microtask loop, or a synchronous loop after an await) is running. " +
      "The kernel ends now; restart it (Jupyter restarts it by itself). Variables are lost.";
    fs.writeSync(2, `pixart-ts kernel: ${evalue}\n`);
    const reply = type === "shutdown_request" ? { status: "ok", restart: Boolean(request.content["restart"]) } : { status: "error", ename: "KernelStuckError", evalue, traceback: [`KernelStuckError: ${evalue}`] };
    const msg: Message<object> = { identities: request.identities, header: newHeader(type.replace(/_request$/, "_reply"), request.header.session, "kernel"), parent_header: request.header, metadata: {}, content: reply, buffers: [] };
    sock.send(encode(msg, signer)).catch(() => {});
    // Give zeromq's I/O thread a moment to put the reply on the wire, then end: the main thread cannot exit cleanly.
    setTimeout(() => process.kill(process.pid, "SIGKILL"), 300);
  };
  setTimeout(check, stuckAfterMs).unref();
}

async function serveControl(sock: zmq.Router, signer: Signer, state: Int32Array, stuckAfterMs: number): Promise<void> {
  let posted = 0;
  try {
    for await (const frames of sock) {
      const request = decodeOrUndefined(frames, signer);
      const type = request?.header.msg_type;
      const signalledCell = type === "interrupt_request" ? await signalIfRunningSync(state) : -1;
      parentPort!.postMessage({ kind: "control", frames, signalledCell } satisfies ToMain);
      posted++;
      if (request && (type === "interrupt_request" || type === "shutdown_request")) watchTaken(sock, signer, state, request, posted, stuckAfterMs);
    }
  } catch (e) {
    if (!sock.closed) throw e;
  }
}

async function runWorker(data: IoWorkerData): Promise<void> {
  const heartbeat = new zmq.Reply({ linger: 0 });
  const control = new zmq.Router({ linger: 1000, sendTimeout: 0 });
  await Promise.all([heartbeat.bind(data.heartbeatEndpoint), control.bind(data.controlEndpoint)]);
  parentPort!.on("message", (msg: ToWorker) => {
    if (msg.kind === "send") {
      control.send(msg.frames.map(asBuffer)).catch((e: unknown) => console.error("control send failed:", e));
      return;
    }
    // Replies sent before (e.g. shutdown_reply) are queued in zeromq already; linger lets them reach the client.
    heartbeat.close();
    control.close();
    const state = new Int32Array(data.busyFlag);
    Atomics.store(state, STATE_CLOSED, 1);
    Atomics.notify(state, STATE_CLOSED);
    parentPort!.close();
  });
  parentPort!.postMessage({ kind: "ready" } satisfies ToMain);
  const signer = new Signer(data.signatureScheme, data.key);
  if (data.memoryStopBytes > 0) guardMemory(new Int32Array(data.busyFlag), data.memoryStopBytes);
  if (data.heapStopBytes > 0) guardHeap(new Int32Array(data.busyFlag), data.heapStopBytes);
  await Promise.all([echoHeartbeats(heartbeat), serveControl(control, signer, new Int32Array(data.busyFlag), data.stuckAfterMs)]);
}

/** The main thread's handle on the worker. */
export class IoWorker {
  private constructor(
    private readonly worker: Worker,
    private readonly state: Int32Array,
  ) {
    worker.on("error", (e) => log.error("kernel I/O worker failed (heartbeat and control stop):", e));
    setInterval(() => Atomics.add(state, STATE_TICKS, 1), 250).unref(); // for the worker's stuck-kernel watchdog
  }

  static start(endpoints: Omit<IoWorkerData, "busyFlag" | "stuckAfterMs" | "memoryStopBytes" | "heapStopBytes">): Promise<IoWorker> {
    const busyFlag = new SharedArrayBuffer(4 * STATE_SLOTS);
    const limits = { stuckAfterMs: stuckAfterMsFromEnv(), memoryStopBytes: memoryStopBytesFromEnv(), heapStopBytes: heapStopBytesFromEnv() };
    const worker = new Worker(__filename, { workerData: { ...endpoints, busyFlag, ...limits } satisfies IoWorkerData });
    worker.unref();
    return new Promise((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`kernel I/O worker exited with code ${code} before binding`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", () => {
        worker.off("error", reject);
        worker.off("exit", onExit);
        resolve(new IoWorker(worker, new Int32Array(busyFlag)));
      });
    });
  }

  /** `signalledCell`: the cell the worker raised SIGINT for while handling this message, or -1. */
  onControl(handler: (frames: Buffer[], signalledCell: number) => void): void {
    this.worker.on("message", (msg: ToMain) => {
      if (msg.kind !== "control") return;
      Atomics.add(this.state, STATE_TAKEN, 1); // the worker's watchdog: the main thread is alive
      handler(msg.frames.map(asBuffer), msg.signalledCell);
    });
  }

  /** Tells the worker what the main thread is doing with which cell (see CellPhase). */
  setCellPhase(phase: CellPhase, cell: number): void {
    Atomics.store(this.state, STATE_CELL, cell);
    Atomics.store(this.state, STATE_PHASE, phase);
    Atomics.notify(this.state, STATE_PHASE);
  }

  /** The cell being executed from its compilation to its end (a CellPhase sequence number), or 0 for none. */
  setRunningCell(cell: number): void {
    Atomics.store(this.state, STATE_RUNNING_CELL, cell);
  }

  /** Whether the worker stopped cell `cell` (a CellPhase sequence number) for using too much memory. */
  stoppedForMemory(cell: number): boolean {
    return cell > 0 && Atomics.load(this.state, STATE_MEMORY_STOP) === cell;
  }

  sendControl(frames: Buffer[]): void {
    this.worker.postMessage({ kind: "send", frames } satisfies ToWorker);
  }

  /**
   * For process.exit() from a cell: has the worker close its sockets and waits for that synchronously (exiting with
   * zeromq sockets open in the worker aborted the process with SIGABRT from the addon's teardown).
   */
  closeSync(timeoutMs = 2000): void {
    this.worker.postMessage({ kind: "close" } satisfies ToWorker);
    Atomics.wait(this.state, STATE_CLOSED, 0, timeoutMs);
  }

  /** Sends what is queued, closes the sockets and ends the worker (forcibly after `timeoutMs`). */
  async close(timeoutMs = 2000): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage({ kind: "close" } satisfies ToWorker);
    const timer = setTimeout(() => void this.worker.terminate(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

if (!isMainThread && (workerData as Partial<IoWorkerData> | null)?.controlEndpoint) {
  runWorker(workerData as IoWorkerData).catch((e: unknown) => {
    throw e;
  });
}
