// Preact with htm's tagged templates: components are written as html`<div>…</div>`, no build step.
import { Component, h, render } from '../vendor/preact.module.js';
import htm from '../vendor/htm.module.js';

export const html = htm.bind(h);
export { Component, h, render };
