/**
 * Comms in both directions: the frontend opens a comm on a target that notebook or library code registered
 * (registerCommTarget), or the kernel opens one (openComm) on a target the frontend registered. Both ends then
 * exchange comm_msg until one sends comm_close.
 */
import { randomUUID } from "crypto";
import { inspect } from "util";
import type { Comm, CommMessage, CommSendOptions, CommTargetHandler } from "../../src/display/display";
import { CommError } from "../../src/display/display";
import { log } from "./log";
import type { Messenger } from "./messenger";
import type { Message } from "./wire";

type Handler = (msg: CommMessage) => void | Promise<void>;

export interface CommManagerOptions {
  messenger: Messenger;
  /** The request that outputs and comm messages sent now belong to. */
  currentParent: () => Message | undefined;
  /** Reports an exception thrown by user comm code (stderr of the current parent). */
  reportError: (where: string, e: unknown) => void;
}

function toBuffers(buffers: Uint8Array[] | undefined): Buffer[] {
  return (buffers ?? []).map((b) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
}

function incoming(msg: Message): CommMessage {
  const content = msg.content as { data?: unknown };
  return { data: content.data ?? {}, metadata: msg.metadata, buffers: msg.buffers };
}

class KernelComm implements Comm {
  private readonly msgHandlers: Handler[] = [];
  private readonly closeHandlers: Handler[] = [];
  private isClosed = false;

  constructor(
    readonly commId: string,
    readonly targetName: string,
    private readonly manager: CommManager,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  send(data: unknown, options: CommSendOptions = {}): void {
    if (this.isClosed) throw new CommError(`comm ${this.commId} (target ${JSON.stringify(this.targetName)}) is closed`);
    this.manager.publish("comm_msg", { comm_id: this.commId, data }, options);
  }

  onMsg(handler: Handler): void {
    this.msgHandlers.push(handler);
  }

  onClose(handler: Handler): void {
    this.closeHandlers.push(handler);
  }

  close(data: unknown = {}, options: CommSendOptions = {}): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.manager.publish("comm_close", { comm_id: this.commId, data }, options);
    this.manager.forget(this.commId);
  }

  async deliver(msg: CommMessage): Promise<void> {
    for (const handler of this.msgHandlers) await handler(msg);
  }

  async closedByFrontend(msg: CommMessage): Promise<void> {
    this.isClosed = true;
    for (const handler of this.closeHandlers) await handler(msg);
  }
}

export class CommManager {
  private readonly targets = new Map<string, CommTargetHandler>();
  private readonly comms = new Map<string, KernelComm>();

  constructor(private readonly options: CommManagerOptions) {}

  registerTarget(name: string, handler: CommTargetHandler): void {
    this.targets.set(name, handler);
  }

  unregisterTarget(name: string): void {
    this.targets.delete(name);
  }

  publish(msgType: string, content: object, options: CommSendOptions): void {
    try {
      JSON.stringify(content); // a typed error for the caller rather than a TypeError from deep inside encode()
    } catch (e) {
      throw new CommError(`${msgType}: data is not JSON-serializable: ${(e as Error).message}`);
    }
    void this.options.messenger.publish(msgType, content, this.options.currentParent(), {
      metadata: (options.metadata ?? {}) as { [k: string]: unknown },
      buffers: toBuffers(options.buffers),
    });
  }

  forget(commId: string): void {
    this.comms.delete(commId);
  }

  /** Kernel-initiated comm. */
  open(targetName: string, data: unknown, options: CommSendOptions): Comm {
    const comm = new KernelComm(randomUUID(), targetName, this);
    this.publish("comm_open", { comm_id: comm.commId, target_name: targetName, data }, options);
    this.comms.set(comm.commId, comm);
    return comm;
  }

  /** comm_info_reply.comms: every open comm, or those of one target. */
  info(targetName?: string): { [commId: string]: { target_name: string } } {
    const out: { [commId: string]: { target_name: string } } = {};
    for (const comm of this.comms.values()) {
      if (targetName === undefined || comm.targetName === targetName) out[comm.commId] = { target_name: comm.targetName };
    }
    return out;
  }

  async handleOpen(msg: Message): Promise<void> {
    const { comm_id: commId, target_name: targetName } = msg.content as { comm_id?: unknown; target_name?: unknown };
    if (typeof commId !== "string" || typeof targetName !== "string") {
      log.warn("comm_open without string comm_id and target_name ignored");
      return;
    }
    const handler = this.targets.get(targetName);
    const comm = new KernelComm(commId, targetName, this);
    if (!handler) {
      // As ipykernel does: tell the frontend at once that nobody is listening.
      log.warn(`comm_open for unknown target ${JSON.stringify(targetName)}; closing it`);
      comm.close({ error: `no comm target ${JSON.stringify(targetName)} is registered in the kernel` });
      return;
    }
    this.comms.set(commId, comm);
    await this.guard(`comm target ${JSON.stringify(targetName)}`, () => handler(comm, incoming(msg)));
  }

  async handleMsg(msg: Message): Promise<void> {
    const commId = (msg.content as { comm_id?: unknown }).comm_id;
    const comm = typeof commId === "string" ? this.comms.get(commId) : undefined;
    if (!comm) {
      log.warn(`comm_msg for unknown comm ${inspect(commId)} ignored`);
      return;
    }
    await this.guard(`comm ${comm.commId} (${comm.targetName}) message handler`, () => comm.deliver(incoming(msg)));
  }

  async handleClose(msg: Message): Promise<void> {
    const commId = (msg.content as { comm_id?: unknown }).comm_id;
    const comm = typeof commId === "string" ? this.comms.get(commId) : undefined;
    if (!comm) return;
    this.comms.delete(comm.commId);
    await this.guard(`comm ${comm.commId} (${comm.targetName}) close handler`, () => comm.closedByFrontend(incoming(msg)));
  }

  private async guard(where: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.options.reportError(where, e);
    }
  }
}
