// The dashboards pages (built by the dashboards work; this file is its entry point).
import { html } from './lib/html.js';

export function DashboardsPage() {
  return html`<h1>Dashboards</h1>`;
}
