// The explore page (built by the explore work; this file is its entry point).
import { html } from './lib/html.js';

export function ExplorePage() {
  return html`<h1>Explore</h1>`;
}
