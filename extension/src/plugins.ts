/**
 * The regular plugins of the package (package.json jupyterlab.extension), beside the mime renderers of index.ts.
 * Add a plugin by importing it here and listing it in the array (the memory panel lives in panel.ts).
 */
import type { JupyterFrontEndPlugin } from "@jupyterlab/application";
import { memoryPanelPlugin } from "./panel";

const plugins: JupyterFrontEndPlugin<unknown>[] = [memoryPanelPlugin];

export default plugins;
