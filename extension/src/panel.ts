/**
 * The memory panel: a right-sidebar panel that follows the kernel of the current notebook over the kernel's
 * `pixart.memory` comm (docs/kernel.md, "Memory panel comm"): process RSS (anonymous / file-backed) and GPU memory,
 * per pipeline a bar per component and the last lifecycle events, updating while cells run; buttons send
 * flush() and "delete component" requests. With another kernel it says so and stays quiet.
 *
 * Everything from the kernel is shown as text (textContent) or as a bar width computed from a number.
 */
import { ILabShell, type JupyterFrontEnd, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import type { ISessionContext } from "@jupyterlab/apputils";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { Widget } from "@lumino/widgets";
import { el, formatBytes } from "./dom";
import { parseSnapshot, type PanelComponent, type PanelPipeline, type PanelSnapshot } from "./panel-data";

export const MEMORY_COMM_TARGET = "pixart.memory";
const PANEL_ID = "pixart-ts-memory-panel";
/** kernel_info's implementation name of the pixart-ts kernel. */
const OUR_IMPLEMENTATION = "pixart-ts";
const INTERVAL_MS = 1000;

/** What the panel needs of a notebook (or console) widget: its session context. */
interface SessionWidget extends Widget {
  sessionContext: ISessionContext;
}

function hasSession(w: Widget | null): w is SessionWidget {
  return w !== null && typeof (w as unknown as { sessionContext?: Partial<ISessionContext> }).sessionContext?.kernelChanged?.connect === "function";
}

/** The panel: a state machine over (session, kernel, comm) and a DOM redrawn from the latest snapshot. */
export class MemoryPanel extends Widget {
  private session: ISessionContext | undefined;
  private comm: Kernel.IComm | undefined;
  private commKernel: Kernel.IKernelConnection | undefined;
  private latest: PanelSnapshot | undefined;
  private lastReply = "";
  private opening = 0;
  private readonly status: HTMLElement;
  private readonly body: HTMLElement;

  constructor() {
    super();
    this.id = PANEL_ID;
    this.addClass("jp-pixart-memory-panel");
    this.title.caption = "pixart-ts memory";
    this.title.label = "Memory";
    this.title.icon = memoryIcon;
    this.status = el(document, "div", "jp-pixart-memory-status");
    this.status.setAttribute("role", "status");
    this.body = el(document, "div", "jp-pixart-memory-body");
    this.node.append(el(document, "h2", "jp-pixart-memory-heading", "pixart-ts memory"), this.status, this.body);
    this.showMessage("Open a notebook that runs the TypeScript (pixart-ts) kernel to see its memory here.");
  }

  /** Follows a notebook (or console) widget's session; other widgets leave the current one in place. */
  follow(widget: Widget | null): void {
    if (!hasSession(widget) || widget.sessionContext === this.session) return;
    this.session?.kernelChanged.disconnect(this.onKernelChanged, this);
    this.session?.statusChanged.disconnect(this.onStatusChanged, this);
    this.session = widget.sessionContext;
    this.session.kernelChanged.connect(this.onKernelChanged, this);
    this.session.statusChanged.connect(this.onStatusChanged, this);
    void this.connect();
  }

  override dispose(): void {
    this.closeComm();
    super.dispose();
  }

  protected override onAfterShow(): void {
    void this.connect();
  }

  protected override onAfterHide(): void {
    this.closeComm(); // no snapshots while nobody looks
  }

  private onKernelChanged(): void {
    this.closeComm();
    void this.connect();
  }

  private onStatusChanged(_: ISessionContext, status: Kernel.Status): void {
    // After a restart the kernel's comms are gone; open a new one once it is up again.
    if ((status === "idle" || status === "busy") && !this.comm) void this.connect();
    if (status === "restarting" || status === "autorestarting" || status === "dead") this.closeComm();
  }

  /** Opens the comm when the panel is visible and the session's kernel is ours. */
  private async connect(): Promise<void> {
    const attempt = ++this.opening;
    const session = this.session;
    const kernel = session?.session?.kernel ?? null;
    if (!session) return;
    if (!kernel) {
      this.showMessage(`${session.name || session.path}: no kernel is running.`);
      return;
    }
    if (!this.isVisible || (this.comm && this.commKernel === kernel)) return;
    this.closeComm();
    let implementation = "";
    try {
      implementation = (await kernel.info).implementation;
    } catch {
      // a kernel that died while starting: nothing to show
    }
    if (attempt !== this.opening || kernel.isDisposed) return;
    if (implementation !== OUR_IMPLEMENTATION) {
      this.showMessage(`This panel shows the memory of the TypeScript (pixart-ts) kernel. ${session.name || session.path} runs ` +
        `${session.kernelDisplayName || "another kernel"}, which does not report it.`);
      return;
    }
    const comm = kernel.createComm(MEMORY_COMM_TARGET);
    comm.onMsg = (msg) => this.onCommMsg(comm, msg);
    comm.onClose = () => {
      if (this.comm === comm) this.comm = undefined;
    };
    this.comm = comm;
    this.commKernel = kernel;
    this.showMessage(`Connecting to ${session.kernelDisplayName}...`);
    comm.open({ interval_ms: INTERVAL_MS });
  }

  private closeComm(): void {
    const comm = this.comm;
    this.comm = undefined;
    this.commKernel = undefined;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is gone already
      }
    }
  }

  private onCommMsg(comm: Kernel.IComm, msg: KernelMessage.ICommMsgMsg): void {
    if (comm !== this.comm) return;
    const data = msg.content.data as Record<string, unknown>;
    if (data["type"] === "reply") {
      this.lastReply = data["ok"] === true ? `${String(data["request"])}: done` : `${String(data["request"])} refused: ${String(data["error"])}`;
      return;
    }
    const parsed = parseSnapshot(data);
    if (typeof parsed === "string") {
      this.showMessage(parsed);
      return;
    }
    this.latest = parsed;
    this.draw(parsed);
  }

  private request(data: Record<string, unknown>): void {
    if (!this.comm || this.comm.isDisposed) return;
    this.lastReply = `${String(data["request"])}: sent`;
    this.comm.send(data as never);
    if (this.latest) this.draw(this.latest);
  }

  private showMessage(text: string): void {
    this.latest = undefined;
    this.node.dataset["seq"] = "";
    this.status.textContent = text;
    this.body.replaceChildren();
  }

  private draw(s: PanelSnapshot): void {
    this.node.dataset["seq"] = String(s.seq);
    this.node.dataset["rss"] = String(s.process.rss);
    this.node.dataset["busy"] = String(s.busy);
    const time = new Date(s.at).toLocaleTimeString();
    this.status.textContent = `${this.session?.name ?? ""} · updated ${time}` +
      (s.busy ? " · a cell is running (flush and delete wait for it)" : "") + (this.lastReply ? ` · ${this.lastReply}` : "");
    const flush = el(document, "button", "jp-pixart-memory-flush jp-mod-styled", "flush()");
    flush.title = "Finish pending releases and collect garbage (pipe.flush() on every pipeline)";
    flush.addEventListener("click", () => this.request({ request: "flush" }));
    this.body.replaceChildren(processSection(s), flush, ...s.pipelines.map((p) => this.pipelineSection(p)));
  }

  private pipelineSection(p: PanelPipeline): HTMLElement {
    const section = el(document, "section", "jp-pixart-memory-pipeline");
    section.dataset["pipeline"] = String(p.id);
    section.append(el(document, "h3", undefined, `${p.label} (pipeline ${p.id})`));
    const largest = Math.max(1, ...p.components.map(totalWeights));
    for (const c of p.components) section.append(this.componentRow(p, c, largest));
    if (p.events.length > 0) {
      const list = el(document, "ol", "jp-pixart-memory-events");
      list.start = p.eventCount - p.events.length + 1;
      for (const e of p.events) {
        list.append(el(document, "li", undefined, `${(e.at / 1000).toFixed(1)} s  ${e.label}  RSS ${formatBytes(e.rss)}`));
      }
      section.append(el(document, "div", "jp-pixart-memory-subheading", "last events"), list);
    }
    return section;
  }

  private componentRow(p: PanelPipeline, c: PanelComponent, largest: number): HTMLElement {
    const row = el(document, "div", "jp-pixart-memory-component");
    row.dataset["component"] = c.name;
    row.dataset["loaded"] = String(c.loaded);
    const weights = totalWeights(c);
    const label = c.loaded
      ? `${formatBytes(weights)} weights, ${formatBytes(c.residentWeightBytes)} resident` + (c.device && c.device !== "cpu" ? ` · ${c.device}` : "")
      : "not loaded";
    const bar = el(document, "div", "jp-pixart-memory-bar");
    const fill = el(document, "div", "jp-pixart-memory-bar-weights");
    fill.style.width = c.loaded ? `${(100 * weights) / largest}%` : "0%";
    const resident = el(document, "div", "jp-pixart-memory-bar-resident");
    resident.style.width = c.loaded ? `${(100 * Math.min(weights, c.residentWeightBytes)) / largest}%` : "0%";
    bar.append(fill, resident);
    const del = el(document, "button", "jp-pixart-memory-delete jp-mod-styled", "delete");
    del.title = `delete pipe.${c.name} (releases its session; flush() then returns the memory)`;
    del.disabled = !c.loaded || (this.latest?.busy ?? false);
    del.addEventListener("click", () => this.request({ request: "delete", pipeline: p.id, component: c.name }));
    row.append(el(document, "span", "jp-pixart-memory-name", c.name), bar, el(document, "span", "jp-pixart-memory-figure", label), del);
    return row;
  }
}

function totalWeights(c: PanelComponent): number {
  return Object.values(c.weightBytes).reduce((a, b) => a + b, 0);
}

function processSection(s: PanelSnapshot): HTMLElement {
  const section = el(document, "section", "jp-pixart-memory-process");
  const p = s.process;
  const bar = el(document, "div", "jp-pixart-memory-bar jp-pixart-memory-rss");
  const anon = el(document, "div", "jp-pixart-memory-bar-anon");
  const file = el(document, "div", "jp-pixart-memory-bar-file");
  const scale = Math.max(1, p.rssPeak, p.rss);
  anon.style.width = `${(100 * p.rssAnon) / scale}%`;
  file.style.width = `${(100 * p.rssFile) / scale}%`;
  bar.append(anon, file);
  const rss = el(document, "div", "jp-pixart-memory-figure jp-pixart-memory-rss-text",
    `RSS ${formatBytes(p.rss)} (anonymous ${formatBytes(p.rssAnon)}, file-backed ${formatBytes(p.rssFile)}) · peak ${formatBytes(p.rssPeak)}`);
  const heap = el(document, "div", "jp-pixart-memory-note", `JS heap ${formatBytes(p.heapUsed)} · array buffers ${formatBytes(p.arrayBuffers)}`);
  const gpu = el(document, "div", "jp-pixart-memory-gpu",
    s.gpu ? `GPU ${formatBytes(s.gpu.usedBytes)}${s.gpu.scope === "device" ? " used on the GPU (all processes)" : " held by this kernel"}` : "GPU: none");
  section.append(el(document, "h3", undefined, "process"), bar, rss, heap, gpu);
  return section;
}

/** The sidebar tab's icon, drawn with DOM calls (a small bar chart). */
const memoryIcon = {
  render(host: HTMLElement): void {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.classList.add("jp-pixart-memory-icon");
    for (const [x, h] of [[2, 6], [7, 10], [12, 13]] as const) {
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", String(x));
      r.setAttribute("y", String(15 - h));
      r.setAttribute("width", "3");
      r.setAttribute("height", String(h));
      svg.append(r);
    }
    host.replaceChildren(svg);
  },
};

export const memoryPanelPlugin: JupyterFrontEndPlugin<void> = {
  id: "pixart-ts-jupyterlab:memory-panel",
  description: "A right-sidebar panel with the live memory of the pixart-ts kernel of the current notebook",
  autoStart: true,
  requires: [ILabShell],
  activate: (_app: JupyterFrontEnd, labShell: ILabShell) => {
    const panel = new MemoryPanel();
    labShell.add(panel, "right", { rank: 900 });
    panel.follow(labShell.currentWidget);
    labShell.currentChanged.connect((_, change) => panel.follow(change.newValue));
  },
};
