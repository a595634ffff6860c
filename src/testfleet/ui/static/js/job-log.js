// The live tail of a job's log: ANSI colours rendered, each line with its device and step.
import { html, useEffect, useRef } from "./html.js";
import { AnsiUp } from "../vendor/ansi_up.mjs";

export const MAX_LINES = 2000;

/**
 * Turns log events into lines: each task keeps its colour state across chunks, and a line
 * that a chunk leaves unfinished is continued by the next chunk of the same step and stream.
 */
export class LogLines {
  constructor() {
    this.painters = new Map();
    this.open = new Map();
    this.lines = [];
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
        return;
      }
      line = { key: `${event.id}:${n}`, task: event.task_id, step, stream, text: part };
      line.html = painter.ansi_to_html(part);
      this.lines.push(line);
    });
    this.open.set(where, finished ? null : line);
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
  }
}

/** The lines, scrolled to the end while the reader is at the end. */
export function LogView({ lines, source, empty }) {
  const box = useRef(null);
  const pinned = useRef(true);
  useEffect(() => {
    if (pinned.current && box.current) box.current.scrollTop = box.current.scrollHeight;
  });
  const onScroll = () => {
    const el = box.current;
    pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };
  return html`<div class="log" ref=${box} onScroll=${onScroll} role="log" aria-live="off" data-testid="log">
    ${lines.length
      ? lines.map(
          (line) => html`<div class=${`log-line ${line.stream}`} key=${line.key}>
            <span class="log-src">${source(line)}</span>
            <span class="log-text" dangerouslySetInnerHTML=${{ __html: line.html }}></span>
          </div>`,
        )
      : html`<div class="log-empty">${empty}</div>`}
  </div>`;
}
