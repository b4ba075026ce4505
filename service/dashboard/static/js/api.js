// The API client: same-origin fetch with the key (if any) as a Bearer header.
// The key lives in sessionStorage (gone when the tab closes); no cookie, so no CSRF surface.

const KEY = "actlab.apiKey";
let onUnauthorized = () => {};

export const auth = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key.trim());
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
  onUnauthorized(fn) {
    onUnauthorized = fn;
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  if (auth.key) out.Authorization = `Bearer ${auth.key}`;
  return out;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (res.status === 401) onUnauthorized(data);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A query string from an object; arrays repeat the key, empty values are left out. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const item of [v].flat()) if (item != null && item !== "") q.append(k, item);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Server-Sent Events read from a fetch() body, not EventSource: EventSource cannot send an
 * Authorization header, and putting the key in the URL would leak it into access logs.
 * Calls onEvent(kind, data, id) per frame; resolves when the server ends the stream.
 */
export async function stream(path, onEvent, signal) {
  const res = await fetch(path, { signal, headers: headers({ Accept: "text/event-stream" }) });
  if (res.status === 401) onUnauthorized(await res.json());
  if (!res.ok) throw new ApiError(res.status, null);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // SSE allows CRLF line ends; a CR at a chunk's end waits in the buffer for its LF.
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      dispatch(frame, onEvent);
    }
  }
}

function dispatch(frame, onEvent) {
  let kind = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const sep = line.indexOf(":");
    const field = sep < 0 ? line : line.slice(0, sep);
    const value = sep < 0 ? "" : line.slice(sep + 1).replace(/^ /, "");
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (data.length) onEvent(kind, JSON.parse(data.join("\n")), id);
}
