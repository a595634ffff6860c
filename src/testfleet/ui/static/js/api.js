// The hub's HTTP API, as the UI calls it: JSON in and out, errors as ApiError.

/** An error answer of the API: `code`, `message` and, for bad input, `errors` with locations. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the hub answered ${status}`);
    this.status = status;
    this.code = body?.code || "http_error";
    this.errors = body?.errors || [];
  }
}

const signedOutListeners = new Set();

/** Call `listener` when the hub says the caller is not (or no longer) signed in. */
export function onSignedOut(listener) {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export function signedOut(error) {
  signedOutListeners.forEach((listener) => listener(error));
}

const early = new Map();

/** Start reading `path` now (a page's first data, while the UI is still starting); the
 * next `api(path)` within 5 s takes this answer instead of asking again. */
export function prefetch(path) {
  const answer = call(`/api/v1${path}`, {});
  answer.catch(() => null);
  early.set(path, { answer, at: Date.now() });
}

/** Call the API at `/api/v1${path}`; a string body is sent as it is with `type`. */
export function api(path, options = {}) {
  const found = early.get(path);
  if (found && (options.method || "GET") === "GET") {
    early.delete(path);
    if (Date.now() - found.at < 5000) return found.answer;
  }
  return call(`/api/v1${path}`, options);
}

/** Call the hub's Testground daemon API (`/run`, `/logs`, ... at the hub's root); `text`:
 * the answer is plain text. */
export const daemon = (path, options = {}) => call(path, options);

async function call(url, { method = "GET", body, type, signal, text = false } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal };
  if (typeof body === "string") {
    init.body = body;
    init.headers["Content-Type"] = type || "text/plain";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { code: "unreachable", message: "the hub cannot be reached" });
  }
  if (response.status === 204) return null;
  if (text && response.ok) return response.text();
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !url.startsWith("/api/v1/auth/session")) signedOut(error);
    throw error;
  }
  return data;
}

/** "?a=1&b=x&b=y" from an object; empty values are left out, arrays repeat. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") search.append(key, String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
