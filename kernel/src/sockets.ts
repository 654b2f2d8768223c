/**
 * The kernel's ZeroMQ sockets: shell and stdin (ROUTER), iopub (XPUB, so it can greet each new subscriber with
 * iopub_welcome), and in a worker thread control (ROUTER) and heartbeat (REP).
 *
 * All sockets have sendTimeout 0: zeromq 6 then hands every message to its I/O thread synchronously, so messages
 * leave in order even while a cell blocks the main thread (otherwise, after a burst of sends, zeromq defers the next
 * one to the event loop and rejects further sends with EBUSY). ROUTER and PUB sockets never wait for a peer anyway.
 */
import * as zmq from "zeromq";
import { ConnectionInfo, endpoint } from "./connection";
import { CellPhase, IoWorker } from "./io-worker";
import { log } from "./log";
import { decode, encode, Message, Signer, WireError } from "./wire";

export type RequestChannel = "shell" | "control" | "stdin";
/** `signalledCell`: for an interrupt_request, the cell SIGINT was already raised for (see io-worker.ts), else -1. */
export type MessageHandler = (msg: Message, channel: RequestChannel, signalledCell: number) => void;

export const socketOptions = { linger: 1000, sendTimeout: 0 } as const;

/** Messages queued per IOPub subscriber before ZeroMQ drops (10× the test's 10,000 displays in one cell). */
export const IOPUB_HIGH_WATER_MARK = 100_000;

export class KernelSockets {
  private closed = false;

  private constructor(
    readonly signer: Signer,
    private readonly routers: Record<"shell" | "stdin", zmq.Router>,
    private readonly iopub: zmq.XPublisher,
    private readonly ioWorker: IoWorker,
  ) {}

  static async bind(info: ConnectionInfo): Promise<KernelSockets> {
    const signer = new Signer(info.signature_scheme, info.key);
    const routers = { shell: new zmq.Router(socketOptions), stdin: new zmq.Router(socketOptions) };
    // allSubs: every subscriber (not only the first with a given topic) announces itself and gets a welcome.
    // ZeroMQ's default high-water mark (1,000 queued messages per subscriber) makes PUB *drop* outputs silently when a
    // cell emits faster than a client reads (10,000 displays in a loop lost 17 to 1,065 of them). Outputs are the
    // user's data: queue up to IOPUB_HIGH_WATER_MARK messages per subscriber instead (memory held only while a
    // client lags; a client that disconnects frees its queue).
    const iopub = new zmq.XPublisher({ ...socketOptions, sendHighWaterMark: IOPUB_HIGH_WATER_MARK });
    iopub.verbosity = "allSubs";
    await Promise.all([
      routers.shell.bind(endpoint(info, "shell")),
      routers.stdin.bind(endpoint(info, "stdin")),
      iopub.bind(endpoint(info, "iopub")),
    ]);
    const ioWorker = await IoWorker.start({
      heartbeatEndpoint: endpoint(info, "hb"),
      controlEndpoint: endpoint(info, "control"),
      signatureScheme: info.signature_scheme,
      key: info.key,
    });
    return new KernelSockets(signer, routers, iopub, ioWorker);
  }

  /** Starts reading shell, control and stdin; each decoded message goes to `handler` in arrival order. */
  listen(handler: MessageHandler): void {
    for (const channel of ["shell", "stdin"] as const) void this.readLoop(channel, handler);
    this.ioWorker.onControl((frames, signalledCell) => this.dispatch("control", frames, handler, signalledCell));
  }

  /** Calls `onSubscribe(topic)` for each new IOPub subscription. */
  onSubscribe(onSubscribe: (topic: string) => void): void {
    void (async () => {
      try {
        for await (const [frame] of this.iopub) {
          if (frame && frame[0] === 1) onSubscribe(frame.subarray(1).toString("utf8"));
        }
      } catch (e) {
        if (!this.closed) log.error("iopub subscription loop failed:", e);
      }
    })();
  }

  /** Marks compilation and synchronous cell code, so that interrupt_request can break the latter with SIGINT. */
  setCellPhase(phase: CellPhase, cell: number): void {
    this.ioWorker.setCellPhase(phase, cell);
  }

  /** The cell being executed, from its compilation to its end, or 0 (the I/O worker watches its heap use). */
  setRunningCell(cell: number): void {
    this.ioWorker.setRunningCell(cell);
  }

  /** Whether the I/O worker stopped cell `cell` because the process ran out of memory (see io-worker.ts). */
  stoppedForMemory(cell: number): boolean {
    return this.ioWorker.stoppedForMemory(cell);
  }

  private dispatch(channel: RequestChannel, frames: Buffer[], handler: MessageHandler, signalledCell = -1): void {
    let msg: Message;
    try {
      msg = decode(frames, this.signer);
    } catch (e) {
      // A bad message must not stop the kernel; the sender gets no reply, as with ipykernel.
      if (e instanceof WireError) log.warn(`ignored ${channel} message: ${e.message}`);
      else log.error(`ignored ${channel} message:`, e);
      return;
    }
    handler(msg, channel, signalledCell);
  }

  private async readLoop(channel: "shell" | "stdin", handler: MessageHandler): Promise<void> {
    try {
      for await (const frames of this.routers[channel]) this.dispatch(channel, frames, handler);
    } catch (e) {
      if (!this.closed) log.error(`${channel} loop failed:`, e);
    }
  }

  send(channel: RequestChannel | "iopub", msg: Message<object>): Promise<void> {
    if (this.closed) return Promise.resolve();
    const frames = encode(msg, this.signer);
    if (channel === "control") {
      this.ioWorker.sendControl(frames);
      return Promise.resolve();
    }
    const socket = channel === "iopub" ? this.iopub : this.routers[channel];
    return socket.send(frames).catch((e: unknown) => log.error(`${channel} send failed:`, e));
  }

  /** Closes every socket before the process exits on its own (process.exit() in a cell). */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of [...Object.values(this.routers), this.iopub]) socket.close();
    this.ioWorker.closeSync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of [...Object.values(this.routers), this.iopub]) socket.close();
    await this.ioWorker.close();
  }
}
