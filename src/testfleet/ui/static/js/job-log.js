// The live tail of a job's log: ANSI colours rendered, each line with its device and step.
import { html, useEffect, useRef } from "./html.js";
import { AnsiUp } from "../vendor/ansi_up.mjs";

export const MAX_LINES = 2000;

/** Turns log events into lines, keeping each task's colour state across chunks. */
export class LogLines {
  constructor() {
    this.painters = new Map();
    this.lines = [];
  }

  add(event) {
    let painter = this.painters.get(event.task_id);
    if (!painter) {
      painter = new AnsiUp();
      this.painters.set(event.task_id, painter);
    }
    const text = (event.data.text || "").replace(/\n$/, "");
    for (const [n, part] of text.split("\n").entries()) {
      this.lines.push({
        key: `${event.id}:${n}`,
        task: event.task_id,
        step: event.data.step_index,
        stream: event.data.stream,
        html: painter.ansi_to_html(part),
      });
    }
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
