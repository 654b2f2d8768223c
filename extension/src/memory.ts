import type { MemoryPayloadV1 } from "./memory-types";
import { el } from "./dom";
import type { Draw } from "./render";

export const drawMemory: Draw<MemoryPayloadV1> = (host, p, ctx) => {
  host.append(el(ctx.doc, "div", "jp-pixart-title", `memory report: ${p.components.length} components`));
  return { ready: Promise.resolve(), resize() {}, dispose() {} };
};
