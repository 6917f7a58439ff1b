// Requests to this `logflux serve`. The session cookie goes with every same-origin request;
// requests that change something carry X-LogFlux-UI, which a page of another origin cannot
// send (serve refuses them without it).

/** An error with the status and the message serve gave. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(r) {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const text = await r.text();
    try {
      const v = JSON.parse(text);
      msg = v.error || v.message || msg;
    } catch {
      if (text.trim()) msg = text.trim();
    }
  } catch {
    // the body could not be read: the status says enough
  }
  return new ApiError(r.status, msg);
}

/** fetch() with the UI's header; throws ApiError on a non-2xx answer. */
export async function request(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { 'X-LogFlux-UI': '1', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, init);
  if (!r.ok) throw await failure(r);
  return r;
}

/** A JSON answer (null for 204). */
export async function json(path, opts) {
  const r = await request(path, opts);
  return r.status === 204 ? null : r.json();
}

/** GET path?params as JSON; params with undefined values are left out. */
export function get(path, params = {}, opts = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return json(s ? `${path}?${s}` : path, opts);
}

/** A Loki query_range with labels categorized (stream labels apart from metadata). */
export function queryRange(params, opts = {}) {
  return get('/loki/api/v1/query_range', params, {
    ...opts,
    headers: { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' },
  });
}
