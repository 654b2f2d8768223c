/**
 * The Lumino widget JupyterLab asks for: it holds no state of its own beyond what is drawn from the output model,
 * and redraws from the model on every update (live progress replaces the data in place).
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import type { PixartMime } from "./payload";
import { loadPlotly } from "./plotly";
import { renderOutput, type Draw, type Rendered } from "./render";

export class PixartRenderer<T> extends Widget implements IRenderMime.IRenderer {
  private drawn: Rendered | undefined;

  constructor(private readonly mime: PixartMime, private readonly draw: Draw<T>) {
    super();
    this.addClass("jp-pixart-renderer");
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.drawn?.dispose();
    this.drawn = renderOutput(this.mime, this.node, model.data[this.mime], { doc: document, loadPlotly, fallbackPng: model.data["image/png"] }, this.draw);
    await this.drawn.ready;
  }

  protected override onResize(): void {
    this.drawn?.resize();
  }

  protected override onAfterShow(): void {
    this.drawn?.resize();
  }

  override dispose(): void {
    this.drawn?.dispose();
    this.drawn = undefined;
    super.dispose();
  }
}
