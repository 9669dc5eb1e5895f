// Kiln's public REST API, called with the signed-in user's token (kept in sessionStorage).

const TOKEN_KEY = "kiln.token";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

// Connection state: listeners learn when a call failed for lack of a server and when it is back.
type ConnectionListener = (online: boolean) => void;
const listeners = new Set<ConnectionListener>();
let online = true;
let probing = false;

export function onConnection(listener: ConnectionListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setOnline(value: boolean): void {
  if (online === value) return;
  online = value;
  listeners.forEach((l) => l(value));
}

async function probe(): Promise<void> {
  if (probing) return;
  probing = true;
  try {
    for (;;) {
      try {
        const r = await fetch("/health", { cache: "no-store" });
        if (r.ok) {
          setOnline(true);
          return;
        }
      } catch {
        // still down
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    probing = false;
  }
}

export function waitOnline(): Promise<void> {
  if (online) return Promise.resolve();
  return new Promise((resolve) => {
    const off = onConnection((v) => {
      if (v) {
        off();
        resolve();
      }
    });
  });
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null) params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let unauthorized: (() => void) | null = null;
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

// One call; a network failure marks the connection down and (for reads) retries once it is back.
export async function api<T = any>(
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
  query?: Query,
): Promise<T> {
  for (;;) {
    let response: Response;
    try {
      response = await fetch(url(path, query), {
        method,
        headers: {
          ...authHeaders(),
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      setOnline(false);
      void probe();
      if (method === "GET") {
        await waitOnline();
        continue;
      }
      throw new ApiError(0, "NETWORK_ERROR", "Cannot reach the Kiln server (reconnecting).");
    }
    setOnline(true);
    const text = await response.text();
    let data: any = {};
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) {
      if (response.status === 401 && unauthorized) unauthorized();
      throw new ApiError(
        response.status,
        String(data.error_code ?? `HTTP_${response.status}`),
        String(data.message ?? response.statusText),
      );
    }
    return data as T;
  }
}

export const get = <T = any>(path: string, query?: Query) => api<T>("GET", path, undefined, query);
export const post = <T = any>(path: string, body: unknown = {}) => api<T>("POST", path, body);

export function b64encode(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

export function b64decode(data: string): string {
  const bin = atob(data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

// A Server-Sent Events stream read with fetch (so it carries the token header).
export async function streamEvents(
  path: string,
  query: Query,
  onEvent: (name: string, data: any) => void,
  signal?: AbortSignal,
): Promise<void> {
  const response = await fetch(url(path, query), { headers: authHeaders(), signal });
  if (!response.ok || !response.body) {
    const text = await response.text();
    let data: any = {};
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
    throw new ApiError(response.status, String(data.error_code ?? "ERROR"), String(data.message));
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const lines: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) lines.push(line.slice(6));
      }
      if (lines.length) onEvent(name, JSON.parse(lines.join("\n")));
    }
  }
}
