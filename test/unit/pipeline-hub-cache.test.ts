import * as assert from "assert";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { RepoNotCachedError } from "../../src/io/errors";
import { fixturesDir } from "../helpers/paths";
import { loadReference } from "../helpers/reference";

/**
 * Lays a pipeline folder out as huggingface_hub does: every file a content-addressed blob, the snapshot a tree of
 * relative symlinks into ../../blobs, refs/main naming the snapshot.
 */
function cacheRepo(cache: string, repoId: string, source: string): void {
  const repo = path.join(cache, `models--${repoId.replace("/", "--")}`);
  const revision = "0123456789abcdef0123456789abcdef01234567";
  const snapshot = path.join(repo, "snapshots", revision);
  fs.mkdirSync(path.join(repo, "blobs"), { recursive: true });
  fs.mkdirSync(path.join(repo, "refs"), { recursive: true });
  fs.writeFileSync(path.join(repo, "refs", "main"), revision);
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(source, rel), { withFileTypes: true })) {
      const r = path.join(rel, entry.name);
      if (entry.isDirectory()) {
        walk(r);
        continue;
      }
      const bytes = fs.readFileSync(path.join(source, r));
      const blob = path.join(repo, "blobs", createHash("sha256").update(bytes).digest("hex"));
      if (!fs.existsSync(blob)) fs.writeFileSync(blob, bytes);
      const link = path.join(snapshot, r);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.relative(path.dirname(link), blob), link);
    }
  };
  walk("");
}

describe("PixArtSigmaPipeline from the Hugging Face cache (offline)", function () {
  this.timeout(120_000);
  let cache: string;
  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-hub-"));
    cacheRepo(cache, "tiny-org/tiny-pixart-sigma", path.join(fixturesDir, "tiny-wide", "pipeline"));
  });
  after(() => fs.rmSync(cache, { recursive: true, force: true }));

  it("resolves a repo id to its snapshot and runs through the symlinked blobs (sharded T5 included)", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained("tiny-org/tiny-pixart-sigma", { cacheDir: cache });
    try {
      const ref = await loadReference(path.join(fixturesDir, "tiny-wide"));
      const enc = await pipe.encodePrompt("Two children flying over green hills at dawn, watercolor", { doClassifierFreeGuidance: false, maxSequenceLength: 64 });
      const expected = (await ref("pipeline.prompt_embeds")).data as Float32Array;
      const worst = enc.promptEmbeds.data.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
      assert.ok(worst <= 1e-4, `prompt embeddings differ by ${worst}`);
      const out = await pipe.call({ prompt: "a cat", numInferenceSteps: 1, guidanceScale: 1, height: 78, width: 50, seed: 0 });
      assert.deepStrictEqual([out.images![0].width, out.images![0].height], [50, 78]);
    } finally {
      await pipe.dispose();
    }
  });

  it("an id that is not cached says where it looked and how to download it", async () => {
    await assert.rejects(PixArtSigmaPipeline.fromPretrained("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", { cacheDir: cache }), (e: unknown) =>
      e instanceof RepoNotCachedError && e.message.includes(cache) && /download PixArt-alpha\/PixArt-Sigma-XL-2-1024-MS/.test(e.message));
  });
});
