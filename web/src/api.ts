/**
 * The UI's one way to the registry: JSON requests to /pier/v1 on this
 * origin. Writes carry the session's CSRF token (the server refuses a
 * cookie-authenticated write without it). A refusal becomes an ApiError
 * with the registry's own message.
 */
import type { SessionResponse } from '../../src/api/pier-v1.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;

export function setCsrf(token: string | null): void {
  csrf = token;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf !== null) headers['x-pier-csrf'] = csrf;
  const res = await fetch(`/pier/v1${path}`, { method, headers, body: body === undefined ? null : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let value: unknown = null;
  try {
    value = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const message = (value as { errors?: { message?: string }[] } | null)?.errors?.[0]?.message ?? `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message);
  }
  return value as T;
}

export const enc = encodeURIComponent;

/** A repository name in a path: each segment encoded, the slashes kept. */
export function repoPath(name: string): string {
  return name.split('/').map(enc).join('/');
}

export function loadSession(): Promise<SessionResponse> {
  return api<SessionResponse>('GET', '/session');
}
