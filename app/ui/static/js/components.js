// Shared pieces: the template tag, status badges, a confirmation dialog, hooks for
// polling and for a clock that ticks.

import { h } from "../vendor/preact.js";
import { useEffect, useRef, useState } from "../vendor/hooks.js";
import htm from "../vendor/htm.js";

export const html = htm.bind(h);

export function navigate(hash) {
  location.hash = hash;
}

export function StatusBadge({ status, small = false }) {
  return html`<span class=${`badge status-${status}${small ? " small" : ""}`}>
    <span class="dot" aria-hidden="true"></span>${status}</span>`;
}

/** Re-renders every `ms` while the page is visible; returns the time. */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => {
      if (!document.hidden) setNow(Date.now());
    }, ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/**
 * Calls `load()` now and every `ms` while the page is visible (and at once when it becomes
 * visible again). `load` gets an AbortSignal; errors go to `onError`. Returns `refresh()`.
 */
export function usePoll(load, ms, deps, onError) {
  const refresh = useRef(() => {});
  useEffect(() => {
    let stopped = false;
    let timer = null;
    let controller = null;
    const run = async () => {
      clearTimeout(timer);
      if (stopped) return;
      if (!document.hidden) {
        controller?.abort();
        controller = new AbortController();
        try {
          await load(controller.signal);
        } catch (error) {
          if (error.name !== "AbortError" && !stopped) onError?.(error);
        }
      }
      if (!stopped) timer = setTimeout(run, ms);
    };
    const visible = () => { if (!document.hidden) run(); };
    refresh.current = run;
    document.addEventListener("visibilitychange", visible);
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller?.abort();
      document.removeEventListener("visibilitychange", visible);
    };
  }, deps);
  return () => refresh.current();
}

/** A modal confirmation (the native <dialog>: focus trap and Escape for free). */
export function ConfirmDialog({ open, title, children, confirmLabel, busy, onConfirm, onCancel }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return html`<dialog ref=${ref} class="dialog" onCancel=${(e) => { e.preventDefault(); onCancel(); }}
      aria-labelledby="dialog-title">
    <form method="dialog" onSubmit=${(e) => { e.preventDefault(); onConfirm(); }}>
      <h2 id="dialog-title">${title}</h2>
      <div class="dialog-body">${children}</div>
      <div class="dialog-actions">
        <button type="button" class="button" onClick=${onCancel} disabled=${busy}>Cancel</button>
        <button type="submit" class="button danger" disabled=${busy}>
          ${busy ? "Working…" : confirmLabel}</button>
      </div>
    </form>
  </dialog>`;
}

export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard (an insecure context): select the text for a manual copy instead.
      return;
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return html`<button type="button" class="button small ghost copy" onClick=${copy}
    aria-label=${`${label}: ${text}`}>${done ? "Copied" : label}</button>`;
}

export function Problem({ error }) {
  if (!error) return null;
  const text = error instanceof TypeError
    ? "Hangar cannot be reached. Retrying…"
    : error.message;
  return html`<div class="banner error" role="alert">${text}</div>`;
}
