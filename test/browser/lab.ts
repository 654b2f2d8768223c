/**
 * Browser test harness: a private `jupyter lab` (127.0.0.1, a random port and token, config / runtime / data /
 * settings / workspaces under one temporary folder, our kernel and the prebuilt extension in its JUPYTER_PATH, never
 * the user's) and Debian's chromium driven headless by playwright-core (no browser download).
 */
import { ChildProcess, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import type { Browser, ConsoleMessage, Page, Request } from "playwright-core";
import { writeKernelSpec } from "../../kernel/src/install";
import { repoRoot } from "../helpers/paths";
import { freePort, kernelMain } from "../kernel/kernel-client";
import { venvBin } from "../kernel/jupyter-env";

export const chromiumPath = process.env["PIXART_CHROMIUM"] ?? "/usr/bin/chromium";
/** The built labextension (`npm run extension:build`), copied into the test's JUPYTER_PATH. */
export const labextensionDir = process.env["PIXART_LABEXTENSION"] ?? path.join(repoRoot(), "extension", "labextension");
/** Where screenshots go (gitignored). */
export const outputDir = path.join(repoRoot(), "test-output", "browser");

/** Why the browser tests cannot run here, or undefined when they can. Only a missing browser is a reason to skip. */
export function missingBrowser(): string | undefined {
  if (fs.existsSync(chromiumPath)) return undefined;
  return `${chromiumPath} is missing; install Debian's chromium (apt-get install chromium) to run the browser tests`;
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

export interface LabServer {
  url: string;
  token: string;
  /** The server's root: notebooks to open are copied here. */
  rootDir: string;
  log: () => string;
  stop: () => Promise<void>;
}

/**
 * JupyterLab plugins left out: the news toast (it would reach the network), and the debugger, which our kernel does
 * not offer (kernel_info says debugger: false) but whose sidebar still calls into a debug session it never started,
 * throwing "No active debugger session" as uncaught errors in the page.
 */
const disabledPlugins = ["@jupyterlab/apputils-extension:announcements", "@jupyterlab/debugger-extension"];

/** Starts a private JupyterLab; `notebooks` are copied into its root (paths relative to the repository or absolute). */
export async function startLab(notebooks: Record<string, string>): Promise<LabServer> {
  if (!fs.existsSync(path.join(labextensionDir, "package.json"))) {
    throw new Error(`${labextensionDir} has no built labextension; run \`npm run extension:build\` first`);
  }
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-lab-"));
  const dirs = Object.fromEntries(["root", "config", "runtime", "data", "settings", "workspaces"].map((d) => [d, path.join(base, d)]));
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  writeKernelSpec(path.join(dirs["data"], "kernels", "pixart-ts"), { main: kernelMain });
  const ext = JSON.parse(fs.readFileSync(path.join(labextensionDir, "package.json"), "utf8")) as { name: string };
  const extTarget = path.join(dirs["data"], "labextensions", ext.name);
  fs.cpSync(labextensionDir, extTarget, { recursive: true });
  fs.writeFileSync(path.join(extTarget, "install.json"), JSON.stringify({ packageManager: "npm", packageName: ext.name }));
  // Every cell rendered, not only those in view (JupyterLab 4 windows long notebooks): the tests look at outputs
  // anywhere in a notebook.
  const tracker = path.join(dirs["settings"], "@jupyterlab", "notebook-extension");
  fs.mkdirSync(tracker, { recursive: true });
  fs.writeFileSync(path.join(tracker, "tracker.jupyterlab-settings"), JSON.stringify({ windowingMode: "none" }));
  fs.mkdirSync(path.join(dirs["config"], "labconfig"));
  fs.writeFileSync(path.join(dirs["config"], "labconfig", "page_config.json"),
    JSON.stringify({ disabledExtensions: Object.fromEntries(disabledPlugins.map((p) => [p, true])) }));
  for (const [name, from] of Object.entries(notebooks)) {
    const to = path.join(dirs["root"], name);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.isAbsolute(from) ? from : path.join(repoRoot(), from), to);
  }

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JUPYTER_CONFIG_DIR: dirs["config"], JUPYTER_RUNTIME_DIR: dirs["runtime"], JUPYTER_DATA_DIR: dirs["data"], JUPYTER_PATH: dirs["data"],
    JUPYTER_CONFIG_PATH: dirs["config"], JUPYTERLAB_SETTINGS_DIR: dirs["settings"], JUPYTERLAB_WORKSPACES_DIR: dirs["workspaces"],
    JUPYTER_PLATFORM_DIRS: "1", IPYTHONDIR: path.join(base, "ipython"),
  };
  const args = ["--no-browser", "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", `--IdentityProvider.token=${token}`,
    `--ServerApp.root_dir=${dirs["root"]}`, "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--ServerApp.shutdown_no_activity_timeout=600", "--MappingKernelManager.cull_idle_timeout=0"];
  if (process.getuid?.() === 0) args.push("--allow-root");
  const proc: ChildProcess = spawn(venvBin("jupyter-lab"), args, { env, cwd: dirs["root"], stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  proc.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      try { process.kill(-proc.pid!, "SIGTERM"); } catch { /* gone */ }
      const timer = setTimeout(() => { try { process.kill(-proc.pid!, "SIGKILL"); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(base, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60000;
  while ((await httpStatus(`${url}/api/status?token=${token}`)) !== 200) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`jupyter lab did not start within 60 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, token, rootDir: dirs["root"], log: () => log, stop };
}

export interface BrowserSession {
  browser: Browser;
  page: Page;
  /** Console errors and uncaught page errors seen so far. */
  errors: string[];
  /** Every request the page made, as URLs. */
  requests: string[];
  close: () => Promise<void>;
}

/** Launches headless chromium with one page that records console errors and requests. */
export async function launchBrowser(): Promise<BrowserSession> {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-extensions"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") errors.push(`console.error: ${m.text()}`);
  });
  page.on("pageerror", (e: Error) => errors.push(`page error: ${e.message}`));
  page.on("request", (r: Request) => requests.push(r.url()));
  page.on("dialog", (d) => {
    errors.push(`dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
  return { browser, page, errors, requests, close: () => browser.close() };
}

/** The visible notebook panel's selector prefix. */
export const activeNotebook = ".jp-NotebookPanel:not(.lm-mod-hidden)";

/**
 * Opens a notebook of the server's root: the first time by loading JupyterLab on a fresh workspace, later by a
 * double click in the file browser (reloading JupyterLab costs a minute on a loaded machine). Waits for its cells.
 */
export async function openNotebook(page: Page, lab: LabServer, name: string): Promise<void> {
  if (!page.url().startsWith(lab.url)) {
    const workspace = `w${randomBytes(4).toString("hex")}`;
    await page.goto(`${lab.url}/lab/workspaces/${workspace}/tree/${name}?reset&token=${lab.token}`);
  } else {
    await page.locator(".jp-DirListing-item", { has: page.locator(".jp-DirListing-itemText", { hasText: name }) }).first().dblclick();
  }
  await page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel", { hasText: name }).waitFor({ timeout: 120000 });
  await page.waitForSelector(`${activeNotebook} .jp-Cell`, { timeout: 120000 });
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T>, what: string, timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function screenshot(page: Page, name: string, selector?: string): Promise<string> {
  fs.mkdirSync(outputDir, { recursive: true });
  const file = path.join(outputDir, `${name}.png`);
  if (selector) await page.locator(selector).first().screenshot({ path: file });
  else await page.screenshot({ path: file });
  return file;
}
