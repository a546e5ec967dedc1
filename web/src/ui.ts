/** Small shared pieces: the html tag, hooks, a copy button, messages, the router's link helper. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';

export { html };
export { useEffect, useMemo, useRef, useState, useCallback } from 'preact/hooks';

export function href(...parts: string[]): string {
  return `#/${parts.join('')}`;
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  const copy = () => {
    void navigator.clipboard?.writeText(text).then(
      () => setDone(true),
      () => setDone(false),
    );
  };
  return html`<button type="button" class="small" aria-label=${label} title=${text} onClick=${copy}>${done ? 'Copied' : 'Copy'}</button>`;
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? html`<p class="error" role="alert">${error}</p>` : null;
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
