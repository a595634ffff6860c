// Small pieces every page uses: state badges, times, chips, empty states, live data.
import { html, useCallback, useEffect, useRef, useState, useContext, createContext } from "./html.js";
import { ago, localTime } from "./format.js";
import { live } from "./live.js";

/** Who is signed in: {name, role, auth_enabled, via}. */
export const Session = createContext(null);

/** The signed-in user, from any component. */
export const useMe = () => useContext(Session);

const OPERATORS = ["admin", "operator"];

/** Whether the user may start, stop, retry and delete jobs, and change schedules. */
export const canOperate = (me) => OPERATORS.includes(me?.role);

/** Whether the user may manage tokens and webhooks. */
export const canAdmin = (me) => me?.role === "admin";

/** A state as a coloured badge. */
export function State({ state, label }) {
  return html`<span class=${`badge state-${state}`}>${label || state}</span>`;
}

const tickers = new Set();
setInterval(() => tickers.forEach((tick) => tick(Date.now())), 5000);

/** The time now, refreshed every 5 s, so that relative times and running durations move. */
export function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    tickers.add(setNow);
    return () => tickers.delete(setNow);
  }, []);
  return now;
}

/** A moment: relative ("3 min ago"), the local date and time on hover. */
export function Time({ at, now }) {
  if (!at) return html`<span class="muted">—</span>`;
  return html`<time datetime=${at} title=${localTime(at)}>${ago(at, now)}</time>`;
}

/** key=value labels (or capabilities) as chips. */
export function Chips({ values }) {
  const entries = Object.entries(values || {});
  if (!entries.length) return html`<span class="muted">—</span>`;
  return html`<span class="chips">${entries.map(
    ([key, value]) => {
      const text = value === "" ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
      return html`<span class="chip" title=${text.length > 40 ? `${key}=${text}` : undefined}><span class="chip-key">${key}</span>${
        text === "" ? "" : `=${text}`
      }</span>`;
    },
  )}</span>`;
}

/** What to show when there is nothing: what it means and what to do next. */
export function Empty({ title, children }) {
  return html`<div class="empty"><p class="empty-title">${title}</p>${children}</div>`;
}

/** An API error in words. */
export function ErrorNote({ error, what }) {
  if (!error) return null;
  return html`<div class="note note-error" role="alert">
    ${what ? html`<strong>${what}: </strong>` : null}${error.message}
  </div>`;
}

/**
 * Data from the API that stays current: `load(signal)` runs now, again whenever the lab
 * changes in one of `topics` (at most every `gap` ms), and when `deps` change.
 */
export function useLive(load, topics, deps, gap = 500) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const latest = useRef(load);
  latest.current = load;
  const run = useRef(null);
  const refresh = useCallback(() => {
    run.current?.abort();
    const controller = new AbortController();
    run.current = controller;
    latest.current(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, error: null, loading: false }),
      (error) =>
        !controller.signal.aborted &&
        error.name !== "AbortError" &&
        setState((old) => ({ ...old, error, loading: false })),
    );
  }, []);
  useEffect(() => {
    refresh();
    let last = 0;
    let timer = null;
    const stop = live.watchLab((changed) => {
      if (!changed.some((topic) => topics.includes(topic)) || timer) return;
      const wait = Math.max(0, last + gap - Date.now());
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        refresh();
      }, wait);
    });
    return () => {
      stop();
      clearTimeout(timer);
      run.current?.abort();
    };
  }, deps);
  return { ...state, refresh };
}

/** A dialog over the page; Escape or the close button ends it. */
export function Dialog({ title, onClose, children, wide }) {
  const box = useRef(null);
  useEffect(() => {
    const dialog = box.current;
    dialog.showModal();
    const cancel = (event) => {
      event.preventDefault();
      onClose();
    };
    dialog.addEventListener("cancel", cancel);
    return () => dialog.removeEventListener("cancel", cancel);
  }, []);
  return html`<dialog ref=${box} class=${wide ? "dialog wide" : "dialog"} aria-label=${title}>
    <header class="dialog-head">
      <h2>${title}</h2>
      <button type="button" class="button ghost" onClick=${onClose} aria-label="Close">✕</button>
    </header>
    ${children}
  </dialog>`;
}

/**
 * Ask before something that cannot be undone: `onConfirm` (async) runs on the `action`
 * button; its error is shown and the dialog stays; otherwise the dialog closes.
 */
export function Confirm({ title, action, onConfirm, onClose, children }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (problem) {
      setError(problem);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <div class="dialog-body">${children}<${ErrorNote} error=${error} what="Refused" /></div>
    <footer class="dialog-foot">
      <button type="button" class="button" onClick=${onClose} autofocus>Cancel</button>
      <button type="button" class="button danger-solid" onClick=${go} disabled=${busy}>${action}</button>
    </footer>
  <//>`;
}
