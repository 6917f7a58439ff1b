// The address's hash is the UI's route: `#/path?params`.

/** The route of a hash: its path and its parameters. */
export function parseHash(hash) {
  const h = hash.replace(/^#/, '') || '/explore';
  const [path, query = ''] = h.split('?');
  return { path, params: new URLSearchParams(query) };
}

/**
 * Goes to `path` with `params` (an object; empty values left out). Returns false when the
 * address was that already (no `hashchange` follows: the caller refreshes by itself).
 */
export function navigate(path, params = {}, { replace = false } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  const hash = `#${path}${s ? `?${s}` : ''}`;
  if (hash === location.hash) return false;
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else location.hash = hash;
  return true;
}
