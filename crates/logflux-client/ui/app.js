// The LogFlux web UI: a shell (navigation, theme) and a page per route of the address's hash:
//   #/explore?q=…&since=1h | &start=…&end=…   search (explore.js)
//   #/saved                                   saved searches (saved.js)
//   #/dashboards, #/dashboards/<id>           dashboards (dashboards.js)
//   #/alerts                                  alert rules and firing alerts (alerts.js)
// Everything it shows was decrypted by this `logflux serve`, on this machine.
import { html, render } from './lib/html.js';
import { useEffect, useState } from './vendor/hooks.module.js';
import { ExplorePage } from './explore.js';
import { SavedPage } from './saved.js';
import { DashboardsPage } from './dashboards.js';
import { AlertsPage } from './alerts.js';
import { parseHash } from './lib/nav.js';
import { json } from './lib/api.js';

export { parseHash, navigate } from './lib/nav.js';

function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Nav({ path }) {
  const link = (href, label, active) =>
    html`<a href=${href} aria-current=${active ? 'page' : undefined}>${label}</a>`;
  return html`<header class="top">
    <span class="brand">LogFlux</span>
    <nav aria-label="Pages">
      ${link('#/explore', 'Explore', path.startsWith('/explore'))}
      ${link('#/saved', 'Saved searches', path.startsWith('/saved'))}
      ${link('#/dashboards', 'Dashboards', path.startsWith('/dashboards'))}
      ${link('#/alerts', 'Alerts', path.startsWith('/alerts'))}
    </nav>
    <${SignOut} />
  </header>`;
}

/** Ends this browser's session (serve forgets it, the cookie is cleared), then shows the
 * sign-in page serve answers without a session. */
function SignOut() {
  const [error, setError] = useState('');
  const out = async () => {
    try {
      await json('/api/ui/logout', { method: 'POST' });
      location.assign('/ui/');
    } catch (e) {
      setError(`Sign out failed: ${e.message}`);
    }
  };
  return html`<span class="signout">
    ${error ? html`<span class="error" role="alert">${error}</span>` : null}
    <button type="button" onClick=${out} data-testid="sign-out">Sign out</button>
  </span>`;
}

function App() {
  const route = useRoute();
  let page;
  if (route.path.startsWith('/saved')) page = html`<${SavedPage} route=${route} />`;
  else if (route.path.startsWith('/dashboards')) page = html`<${DashboardsPage} route=${route} />`;
  else if (route.path.startsWith('/alerts')) page = html`<${AlertsPage} />`;
  else page = html`<${ExplorePage} route=${route} />`;
  return html`<${Nav} path=${route.path} /><main id="main">${page}</main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the loading message
render(html`<${App} />`, root);
