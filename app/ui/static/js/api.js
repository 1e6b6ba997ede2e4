// The HTTP API, same origin. The team token lives in this tab's sessionStorage only:
// never in a cookie (no ambient credentials for other sites to ride on) or a URL.

const TOKEN_KEY = "hangar.token";
// The API is at the origin's root, or wherever Hangar is mounted: /ui/ is under it.
export const API_BASE = new URL("../", document.baseURI);

let token = sessionStorage.getItem(TOKEN_KEY);
const signOutListeners = new Set();

export const signedIn = () => Boolean(token);

export function signIn(value) {
  token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut(reason = null) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  revalidation.clear();
  for (const listener of signOutListeners) listener(reason);
}

export function onSignOut(listener) {
  signOutListeners.add(listener);
  return () => signOutListeners.delete(listener);
}

/** An error response, with the problem+json body when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  get code() {
    return this.problem.code;
  }
}

export function url(path) {
  return new URL(path.replace(/^\//, ""), API_BASE);
}

// Conditional GETs: the last ETag and body per URL, so polling costs a 304 when nothing
// changed (the browser's own cache is bypassed: this is explicit and the same everywhere).
const revalidation = new Map();
const MAX_REVALIDATED = 200;

/**
 * fetch() against the API with the team token. Resolves to {status, body, changed, at}
 * (`at`: when the answer arrived, for figures that grow with time); rejects with ApiError
 * (a 401 also signs out) or a TypeError when the network failed.
 */
export async function api(path, { method = "GET", body, headers = {}, conditional = false,
                                  signal } = {}) {
  if (!token) throw new ApiError(401, { detail: "Not signed in." });
  const target = url(path);
  const sent = { Accept: "application/json", Authorization: `Bearer ${token}`, ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const cached = conditional ? revalidation.get(target.href) : undefined;
  if (cached) sent["If-None-Match"] = cached.etag;
  const response = await fetch(target, {
    method, headers: sent, signal, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const at = Date.now();
  if (response.status === 304 && cached) {
    return { status: 200, body: cached.body, changed: false, at: cached.at };
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    if (response.status === 401) signOut("Your token was refused (unknown or revoked). Sign in again.");
    throw new ApiError(response.status, data);
  }
  const etag = response.headers.get("ETag");
  if (conditional && etag) {
    if (revalidation.size >= MAX_REVALIDATED) revalidation.clear();
    revalidation.set(target.href, { etag, body: data, at });
  }
  return { status: response.status, body: data, changed: true, at };
}

/** A key for Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
