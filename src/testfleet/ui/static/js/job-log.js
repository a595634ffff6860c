// The live tail of a job's log: ANSI colours rendered, each line with its device and step.
import { html, useEffect, useRef } from "./html.js";
import { AnsiUp } from "../vendor/ansi_up.mjs";

export const MAX_LINES = 2000;
const FLUSH_MS = 50;

/**
 * Turns log events into lines: each task keeps its colour state across chunks, and a line
 * that a chunk leaves unfinished is continued by the next chunk of the same step and stream.
 * Views are told which lines were added or continued: at once when lines are sparse, at
 * most every FLUSH_MS while they pour in.
 */
export class LogLines {
  constructor() {
    this.painters = new Map();
    this.open = new Map();
    this.lines = [];
    this.views = new Set();
    this.added = [];
    this.changed = new Set();
    this.timer = null;
    this.flushed = 0;
  }

  add(event) {
    let painter = this.painters.get(event.task_id);
    if (!painter) {
      painter = new AnsiUp();
      this.painters.set(event.task_id, painter);
    }
    const { text = "", step_index: step, stream } = event.data;
    const where = `${event.task_id}:${step}:${stream}`;
    const parts = text.split("\n");
    const finished = parts.at(-1) === "";
    if (finished) parts.pop();
    let line = this.open.get(where);
    parts.forEach((part, n) => {
      if (n === 0 && line) {
        line.html += painter.ansi_to_html(part);
        line.text += part;
        if (this.views.size) this.changed.add(line);
        return;
      }
      line = { task: event.task_id, step, stream, text: part, html: painter.ansi_to_html(part) };
      this.lines.push(line);
      if (this.views.size) this.added.push(line); // a view yet to come draws all `lines`
    });
    this.open.set(where, finished ? null : line);
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
    if (!this.timer && this.views.size) {
      const wait = Math.max(0, this.flushed + FLUSH_MS - performance.now());
      this.timer = setTimeout(() => this.flush(), wait);
    }
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    this.flushed = performance.now();
    const [added, changed] = [this.added, this.changed];
    this.added = [];
    this.changed = new Set();
    this.views.forEach((view) => view(added, changed));
  }

  /** Call `view(added, changed)` with the lines new since it drew `lines`; returns a stop. */
  watch(view) {
    if (this.timer) this.flush(); // what is pending goes to the views there were, not this one
    this.views.add(view);
    return () => this.views.delete(view);
  }
}

/**
 * The lines (those `keep` accepts), kept in the DOM by hand, like a terminal: a new line is
 * one appended node, never a re-render of the whole log. Scrolled to the end while the
 * reader is at the end. `sources` changes when `source(line)` may say something new.
 */
export function LogView({ log, keep, source, sources, empty }) {
  const box = useRef(null);
  const state = useRef({ pinned: true, nodes: new WeakMap(), lines: new WeakMap(), placeholder: null });
  useEffect(() => {
    if (state.current.placeholder) state.current.placeholder.textContent = empty;
  }, [empty]);
  useEffect(() => {
    // Lines drawn before their task was known say "task N": name them again.
    for (const row of box.current.children) {
      const line = state.current.lines.get(row);
      if (line) row.firstChild.textContent = source(line);
    }
  }, [sources]);
  useEffect(() => {
    const el = box.current;
    const { nodes } = state.current;
    const placeholder = document.createElement("div");
    placeholder.className = "log-empty";
    placeholder.textContent = empty;
    state.current.placeholder = placeholder;
    const draw = (line) => {
      const row = document.createElement("div");
      row.className = `log-line ${line.stream}`;
      const src = document.createElement("span");
      src.className = "log-src";
      src.textContent = source(line);
      const text = document.createElement("span");
      text.className = "log-text";
      text.innerHTML = line.html;
      row.append(src, text);
      nodes.set(line, row);
      state.current.lines.set(row, line);
      return row;
    };
    const show = (added, changed) => {
      changed.forEach((line) => {
        const row = nodes.get(line);
        if (row) row.lastChild.innerHTML = line.html;
      });
      const rows = added.filter(keep).map(draw);
      if (rows.length) {
        placeholder.remove();
        el.append(...rows);
        while (el.childElementCount > MAX_LINES) el.firstElementChild.remove();
      }
      if (state.current.pinned) el.scrollTop = el.scrollHeight;
    };
    el.replaceChildren(placeholder);
    show(log.lines, new Set());
    return log.watch(show);
  }, [log, keep]);
  const onScroll = () => {
    const el = box.current;
    state.current.pinned = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };
  return html`<div class="log" ref=${box} onScroll=${onScroll} role="log" aria-live="off"
    data-testid="log"></div>`;
}
