// The saved searches page (built by the dashboards work; this file is its entry point).
import { html } from './lib/html.js';

export function SavedPage() {
  return html`<h1>Saved searches</h1>`;
}
