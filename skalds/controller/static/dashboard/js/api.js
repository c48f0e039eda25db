// The REST API: one fetch wrapper that sends the API key, asks for one when the controller
// answers 401, and turns error answers ({error, detail, errors:[{field, message}]}) into
// ApiError so forms can put each message next to its field.

const KEY = 'skalds.apiKey';
let askForKey = async () => null;
let asking = null;
const keyListeners = new Set();

/** An error answer of the API. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body === 'object' ? body.detail || body.error : null;
    super(detail ? String(detail) : `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.kind = body && body.error;
    this.fields = (body && Array.isArray(body.errors) ? body.errors : []).filter((e) => e && e.field);
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
  for (const fn of keyListeners) fn(key);
}

export function onKeyChange(fn) {
  keyListeners.add(fn);
}

/** The function that asks the operator for a key: async (reason) => key or null. */
export function setKeyPrompt(fn) {
  askForKey = fn;
}

/** Ask once, however many requests were refused at the same time. */
export function requestKey(reason) {
  if (!asking) {
    asking = Promise.resolve(askForKey(reason))
      .then((key) => {
        if (key) setApiKey(key);
        return key;
      })
      .finally(() => {
        asking = null;
      });
  }
  return asking;
}

/** Headers every request carries: the key, when there is one. */
export function authHeaders() {
  const key = apiKey();
  return key ? {Authorization: `Bearer ${key}`} : {};
}

/** /api/tasks?… from a path and query object (empty values left out, arrays repeated). */
export function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Call the API; resolves with the parsed JSON answer, rejects with ApiError.
 * A 401 asks for a key (once for all callers) and tries again with it.
 */
export async function api(path, {method = 'GET', query, body, signal} = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = {Accept: 'application/json', ...authHeaders()};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: 'same-origin',
    });
    if (res.status === 401 && attempt < 3) {
      const key = await requestKey(apiKey() ? 'The controller refused this API key.' : 'This controller asks for an API key.');
      if (key) continue;
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = {error: 'BadAnswer', detail: text.slice(0, 300)};
      }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
}

/** The same, answering null for 404 (endpoints some controllers do not have yet). */
export async function apiOptional(path, options) {
  try {
    return await api(path, options);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

export const taskPath = (id) => `/api/tasks/${encodeURIComponent(id)}`;
