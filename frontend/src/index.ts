// Entry point: TensorBoard imports this module in the plugin's iframe and
// calls `render()` once (see tensorboard/backend/application.py,
// `_serve_plugin_entry`).

import { App } from "./app";
import { borrowParentFonts } from "./fonts";

let app: App | null = null;

function loadStyles(): Promise<void> {
  // CSS is a separate file (TensorBoard's CSP allows 'self' styles); its URL
  // is relative to this module, so any --path_prefix works.
  const href = new URL("./static/index.css", import.meta.url).href;
  if (document.querySelector(`link[data-ttsmon]`)) return Promise.resolve();
  return new Promise((resolve) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    link.dataset.ttsmon = "1";
    link.addEventListener("load", () => resolve());
    link.addEventListener("error", () => resolve());
    document.head.appendChild(link);
  });
}

/** Builds the TTS Monitor tab into the current document. */
export async function render(): Promise<void> {
  if (app) return;
  const meta = document.createElement("meta");
  meta.name = "viewport";
  meta.content = "width=device-width, initial-scale=1";
  document.head.appendChild(meta);
  document.title = "TTS Monitor";
  // This module is served at <root>/data/plugin/ttsmon/index.js.
  borrowParentFonts(new URL("../../../", import.meta.url).href);
  await loadStyles();
  const root = document.createElement("div");
  root.className = "ttsmon";
  document.body.appendChild(root);
  app = new App(root);
}
