import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { openComponent, openPipelineFolder, withAliases } from "../../src/io/checkpoint";
import { ConfigError, InvalidRepoIdError, PathEscapeError, PathNotFoundError, RepoNotCachedError } from "../../src/io/errors";
import {
  hubCacheDir, isRepoId, repoFolderName, resolveModelPath, snapshotPath, validateRepoId,
} from "../../src/io/hub-cache";
import { readTensorFloat32 } from "../../src/io/safetensors";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { makeTempDir, rejectsWith, removeTempDir, writeFile } from "../helpers/st-writer";

const REPO = "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS";
const COMMIT = "1447f6b5a3fe0ab4ee9e0b45e3fe9b6b3f5e1c11";
const TAG_COMMIT = "2222222222222222222222222222222222222222";

/**
 * Builds `<cache>/models--org--name` as huggingface_hub lays it out: file contents in blobs/<sha256>,
 * snapshots/<commit>/<path> as relative symlinks to ../../blobs/<sha> (one more ../ per subfolder),
 * refs/<name> holding the commit.
 */
class FakeCacheRepo {
  readonly repoDir: string;
  constructor(cacheDir: string, repoId: string) {
    this.repoDir = path.join(cacheDir, `models--${repoId.replace("/", "--")}`);
  }
  addFile(commit: string, rel: string, content: Uint8Array | string): void {
    const bytes = typeof content === "string" ? Buffer.from(content) : content;
    const sha = crypto.createHash("sha256").update(bytes).digest("hex");
    writeFile(path.join(this.repoDir, "blobs", sha), bytes);
    const link = path.join(this.repoDir, "snapshots", commit, rel);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    const up = "../".repeat(rel.split("/").length + 1);
    fs.symlinkSync(`${up}blobs/${sha}`, link);
  }
  setRef(name: string, commit: string): void {
    writeFile(path.join(this.repoDir, "refs", name), commit);
  }
}

async function safetensorsBytes(dir: string, tensors: Parameters<typeof writeSafetensors>[1]): Promise<Buffer> {
  const file = path.join(dir, `st-${crypto.randomUUID()}.safetensors`);
  await writeSafetensors(file, tensors);
  const bytes = fs.readFileSync(file);
  fs.rmSync(file);
  return bytes;
}

describe("io/hub-cache: repo ids resolved offline in the Hugging Face cache", () => {
  let tmp: string;
  let cacheDir: string;
  let repo: FakeCacheRepo;
  before(async () => {
    tmp = makeTempDir();
    cacheDir = path.join(tmp, "hub");
    repo = new FakeCacheRepo(cacheDir, REPO);
    repo.addFile(COMMIT, "model_index.json", JSON.stringify({
      _class_name: "PixArtSigmaPipeline", _diffusers_version: "0.28.0.dev0",
      text_encoder: ["transformers", "T5EncoderModel"], transformer: ["diffusers", "PixArtTransformer2DModel"],
    }));
    repo.addFile(COMMIT, "transformer/config.json", JSON.stringify({ _class_name: "PixArtTransformer2DModel" }));
    repo.addFile(COMMIT, "transformer/diffusion_pytorch_model.safetensors", await safetensorsBytes(tmp, [
      { name: "proj_out.bias", dtype: "F32", shape: [2], data: new Float32Array([0.25, -4]) },
    ]));
    repo.addFile(COMMIT, "text_encoder/config.json", JSON.stringify({ _class_name: "T5EncoderModel" }));
    repo.addFile(COMMIT, "text_encoder/model-00001-of-00001.safetensors", await safetensorsBytes(tmp, [
      { name: "shared.weight", dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xbc00]) },
    ]));
    repo.addFile(COMMIT, "text_encoder/model.safetensors.index.json", JSON.stringify({
      weight_map: { "shared.weight": "model-00001-of-00001.safetensors" },
    }));
    repo.setRef("main", `${COMMIT}\n`);
    repo.addFile(TAG_COMMIT, "model_index.json", JSON.stringify({ _class_name: "OlderPipeline" }));
    repo.setRef("v0.1", TAG_COMMIT);
  });
  after(() => removeTempDir(tmp));

  it("finds the cache folder from HF_HUB_CACHE, then HF_HOME, then XDG_CACHE_HOME, then ~/.cache", () => {
    assert.strictEqual(hubCacheDir({ HF_HUB_CACHE: "/a/hub", HF_HOME: "/b" }), "/a/hub");
    assert.strictEqual(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/legacy", HF_HOME: "/b" }), "/legacy");
    assert.strictEqual(hubCacheDir({ HF_HOME: "/b", XDG_CACHE_HOME: "/x" }), path.join("/b", "hub"));
    assert.strictEqual(hubCacheDir({ XDG_CACHE_HOME: "/x" }), path.join("/x", "huggingface", "hub"));
    assert.strictEqual(hubCacheDir({}), path.join(os.homedir(), ".cache", "huggingface", "hub"));
    assert.strictEqual(hubCacheDir({ HF_HOME: "~/hf" }), path.join(os.homedir(), "hf", "hub"));
  });

  it("names the repo folder like huggingface_hub and validates repo ids", () => {
    assert.strictEqual(repoFolderName(REPO), "models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS");
    for (const ok of [REPO, "gpt2", "org/name.v1_2", "a/b"]) assert.ok(isRepoId(ok), ok);
    for (const bad of ["", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b.", "/a", "a/b.git", "a b/c", "a\\b", "café/x", "x".repeat(97)]) {
      assert.ok(!isRepoId(bad), bad);
    }
  });

  it("an invalid repo id is an InvalidRepoIdError naming it", async () => {
    await rejectsWith(() => validateRepoId("org/../../x"), InvalidRepoIdError, ["org/../../x", 'field "repo_id"', "namespace/name"]);
  });

  it("an invalid revision is an InvalidRepoIdError naming it", async () => {
    await rejectsWith(snapshotPath(REPO, { cacheDir, revision: "../../../etc" }), InvalidRepoIdError, ["../../../etc", 'field "revision"']);
  });

  it("resolves a repo id to snapshots/<refs/main> and reads tensors through the blob symlinks", async () => {
    const dir = await resolveModelPath(REPO, { cacheDir });
    assert.strictEqual(dir, path.join(repo.repoDir, "snapshots", COMMIT));
    const p = await openPipelineFolder(dir);
    assert.strictEqual(p.className, "PixArtSigmaPipeline");
    assert.strictEqual(p.root, fs.realpathSync(repo.repoDir));
    const w = (await openComponent(dir, "transformer")).weights!;
    const info = w.get("proj_out.bias");
    assert.strictEqual(path.dirname(info.file), fs.realpathSync(path.join(repo.repoDir, "blobs")));
    assert.deepStrictEqual(Array.from(await readTensorFloat32(info)), [0.25, -4]);
  });

  it("resolves sharded weights through symlinks, with the T5 alias", async () => {
    const dir = await resolveModelPath(REPO, { cacheDir });
    const w = withAliases((await openComponent(dir, "text_encoder")).weights!, { "encoder.embed_tokens.weight": "shared.weight" });
    assert.deepStrictEqual(Array.from(await readTensorFloat32(w.get("encoder.embed_tokens.weight"))), [1, -1]);
  });

  it("finds the cache from the environment when no cacheDir is given", async () => {
    const dir = await resolveModelPath(REPO, { env: { HF_HOME: tmp } });
    assert.strictEqual(dir, path.join(repo.repoDir, "snapshots", COMMIT));
  });

  it("resolves a named revision through refs/ and a commit hash directly", async () => {
    assert.strictEqual(await snapshotPath(REPO, { cacheDir, revision: "v0.1" }), path.join(repo.repoDir, "snapshots", TAG_COMMIT));
    assert.strictEqual(await snapshotPath(REPO, { cacheDir, revision: COMMIT }), path.join(repo.repoDir, "snapshots", COMMIT));
    assert.strictEqual((await openPipelineFolder(await resolveModelPath(REPO, { cacheDir, revision: "v0.1" }))).className, "OlderPipeline");
  });

  it("returns an existing local folder as is, even when it looks like a repo id", async () => {
    const local = path.join(tmp, "org", "model");
    fs.mkdirSync(local, { recursive: true });
    assert.strictEqual(await resolveModelPath(local, { cacheDir }), local);
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      assert.strictEqual(await resolveModelPath("org/model", { cacheDir }), "org/model");
    } finally {
      process.chdir(cwd);
    }
  });

  it("an unknown repo is a RepoNotCachedError saying where it looked and how to download", async () => {
    const where = path.join(cacheDir, "models--someone--unknown-model");
    const e = await rejectsWith(resolveModelPath("someone/unknown-model", { cacheDir }), RepoNotCachedError,
      [where, '"someone/unknown-model"', "hf download someone/unknown-model", 'field "repo_id"']);
    assert.strictEqual(e.repoId, "someone/unknown-model");
  });

  it("an unknown revision is a RepoNotCachedError naming the ref file", async () => {
    await rejectsWith(resolveModelPath(REPO, { cacheDir, revision: "dev" }), RepoNotCachedError,
      [path.join(repo.repoDir, "refs", "dev"), "--revision dev"]);
  });

  it("a ref whose snapshot folder is missing is a RepoNotCachedError naming the snapshot", async () => {
    const missing = "3333333333333333333333333333333333333333";
    repo.setRef("broken", missing);
    await rejectsWith(snapshotPath(REPO, { cacheDir, revision: "broken" }), RepoNotCachedError,
      [path.join(repo.repoDir, "snapshots", missing), `no snapshot for commit ${missing}`]);
  });

  it("a ref file holding something else than a commit hash is a ConfigError naming it", async () => {
    repo.setRef("garbage", "../../../../etc");
    await rejectsWith(snapshotPath(REPO, { cacheDir, revision: "garbage" }), ConfigError,
      [path.join(repo.repoDir, "refs", "garbage"), "40-hex commit hash"]);
  });

  it("a path that is neither a folder nor a repo id is a PathNotFoundError naming it", async () => {
    const p = path.join(tmp, "no", "such", "folder");
    await rejectsWith(resolveModelPath(p, { cacheDir }), PathNotFoundError, [p, "repo id"]);
  });

  it("refuses a snapshot symlink that leads outside the cache repo folder", async () => {
    const evil = new FakeCacheRepo(cacheDir, "evil/repo");
    evil.addFile(COMMIT, "model_index.json", JSON.stringify({ _class_name: "X", transformer: ["diffusers", "Y"] }));
    evil.addFile(COMMIT, "transformer/config.json", "{}");
    const outside = path.join(tmp, "secret.safetensors");
    fs.writeFileSync(outside, await safetensorsBytes(tmp, [{ name: "s", dtype: "U8", shape: [1], data: new Uint8Array(1) }]));
    const link = path.join(evil.repoDir, "snapshots", COMMIT, "transformer", "diffusion_pytorch_model.safetensors");
    fs.symlinkSync(path.relative(path.dirname(link), outside), link);
    evil.setRef("main", COMMIT);
    const dir = await resolveModelPath("evil/repo", { cacheDir });
    await rejectsWith(openComponent(dir, "transformer"), PathEscapeError,
      [path.join(dir, "transformer"), "diffusion_pytorch_model.safetensors", fs.realpathSync(evil.repoDir), "symlink"]);
  });
});
