/**
 * The live objects that own model memory (pipelines), so that a memory panel can list them without the
 * notebook passing them around: each registers itself when it is made, held through a WeakRef so that the
 * registry never keeps a pipeline alive. A leaf module like kernel-registry.ts: the pipeline registers, the
 * kernel reads, neither imports the other.
 */

/** What a memory panel may ask of a pipeline (structurally ComponentHost's methods). */
export interface MemoryHost {
  /** A short name for the panel, e.g. the model folder's name. */
  readonly memoryLabel: string;
  /** Per-component weights, residency and peaks, and the lifecycle events, without probing the GPU. */
  memorySnapshot(): MemoryHostSnapshot;
  /** Removes a model and starts releasing its session. */
  unload(name: string): void;
  /** Finishes pending releases and collects garbage. */
  flush(): Promise<unknown>;
}

export interface MemoryHostSnapshot {
  components: unknown[];
  events: readonly unknown[];
}

interface HostRegistry {
  hosts: Array<{ id: number; ref: WeakRef<MemoryHost> }>;
  nextId: number;
}

const registryKey = Symbol.for("pixart-ts.memory-hosts");

/** Process-wide, so that every build of this module (dist/, .build/) shares one list, as with the kernel registry. */
function registry(): HostRegistry {
  const holder = globalThis as unknown as { [registryKey]?: HostRegistry };
  holder[registryKey] ??= { hosts: [], nextId: 1 };
  return holder[registryKey];
}

/** Adds a host; returns its id (stable for the host's life, never reused). */
export function registerMemoryHost(host: MemoryHost): number {
  const reg = registry();
  const id = reg.nextId++;
  reg.hosts.push({ id, ref: new WeakRef(host) });
  return id;
}

/** The hosts still alive, oldest first (collected ones are dropped from the list). */
export function liveMemoryHosts(): Array<{ id: number; host: MemoryHost }> {
  const reg = registry();
  const live: Array<{ id: number; host: MemoryHost }> = [];
  reg.hosts = reg.hosts.filter(({ id, ref }) => {
    const host = ref.deref();
    if (host) live.push({ id, host });
    return host !== undefined;
  });
  return live;
}
