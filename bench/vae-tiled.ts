/**
 * Tiled VAE decode at a large size (default 2048 px) on a full-size-shaped VAE: peak RSS of the decode stage
 * (VmHWM reset after load) and time, printed after every tile so a long run shows its peak early.
 *
 *   .venv/bin/python tools/reference/make_fullsize.py .bench/fullsize --components vae
 *   npm run build && node --expose-gc dist/bench/vae-tiled.js [--dir .bench/fullsize/vae] [--size 2048]
 *        [--tile 512] [--threads 2] [--plain] [--no-arena]
 * --plain decodes without tiling instead (for comparison; at 2048 px that needs far more memory).
 * Per tile: wall, user and system CPU time, minor page faults (the arena's growth shows there), RSS.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes, processMemory, resetPeak } from "../src/memory/probes";
import { AutoencoderKL } from "../src/models/autoencoder-kl";
import { tileGeometry, tiledDecode } from "../src/models/autoencoder-kl-tiling";
import { TorchGenerator } from "../src/random";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    dir: { type: "string", default: path.resolve(__dirname, "..", "..", ".bench", "fullsize", "vae") },
    size: { type: "string", default: "2048" }, tile: { type: "string" }, threads: { type: "string", default: "2" },
    plain: { type: "boolean", default: false }, "no-arena": { type: "boolean", default: false },
  } });
  // --no-arena: the allocation before the VAE had its arena (activations mapped afresh on every run).
  const arena = values["no-arena"] ? { memoryArena: false, enableMemPattern: true } : {};
  const vae = await AutoencoderKL.fromPretrained(values.dir!, { intraOpNumThreads: Number(values.threads), ...arena });
  const size = Number(values.size);
  const lat = size / vae.scaleFactor;
  const z = { data: new TorchGenerator(0).randn([1, vae.config.latentChannels, lat, lat]), dims: [1, vae.config.latentChannels, lat, lat] };
  const g = tileGeometry(values.tile ? Number(values.tile) : vae.tileSampleMinSize, vae.scaleFactor, vae.tileOverlapFactor);
  const before = processMemory();
  console.log(`VAE loaded: RSS ${formatBytes(before.rss)}; decoding ${size}×${size} ${values.plain ? "in one piece" : `in ${g.sampleSize} px tiles`} (load average ${loadavg()})`);
  resetPeak();
  const start = Date.now();
  let tiles = 0;
  const out = values.plain ? await vae.decodeRaw(z, { tiled: false }) : await tiledDecode(z, g, async (tile) => {
    const t = Date.now();
    const u = process.resourceUsage();
    const decoded = await vae.decodeRaw(tile, { tiled: false });
    const m = processMemory();
    const v = process.resourceUsage();
    console.log(`tile ${++tiles} [${tile.dims.slice(2).join("×")} latents]: ${((Date.now() - t) / 1000).toFixed(1)} s (user ${((v.userCPUTime - u.userCPUTime) / 1e6).toFixed(1)} s, system ${((v.systemCPUTime - u.systemCPUTime) / 1e6).toFixed(1)} s, ${v.minorPageFault - u.minorPageFault} minor faults), RSS ${formatBytes(m.rss)}, peak RSS so far ${formatBytes(m.rssPeak)} (load ${loadavg()})`);
    return decoded;
  });
  const m = processMemory();
  console.log(`done: [${out.dims.join(", ")}] in ${((Date.now() - start) / 1000).toFixed(1)} s; peak RSS of the decode stage ${formatBytes(m.rssPeak)} (${m.rssPeak} B); load average ${loadavg()}`);
  await vae.release();
}

function loadavg(): string {
  return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

void main();
