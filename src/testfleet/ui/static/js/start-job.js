// Starting a job: paste or upload a descriptor (YAML or JSON); the hub's validation errors
// are listed and marked at their line.
import { html, useMemo, useRef, useState } from "./html.js";
import { api } from "./api.js";
import { Dialog } from "./components.js";
import { lineOf } from "./pointer.js";
import { navigate } from "./router.js";

export const EXAMPLE = `name: smoke
tags: [ui]
tests:
  - name: hello
    devices: {count: 1}
    steps:
      - {name: say, plugin: echo, params: {text: hi}}
      - name: run
        plugin: cmd
        timeout: 30s
        params: {executable: python3, args: ["-c", "print(6 * 7)"]}
`;

/** The media type of a descriptor's text: JSON if it looks like an object, else YAML. */
export const descriptorType = (text) =>
  text.trimStart().startsWith("{") ? "application/json" : "application/yaml";

/** A descriptor's text with line numbers; `marks` (line -> message) are shown in red. */
export function Editor({ text, onInput, marks, label = "Job descriptor" }) {
  const count = text.split("\n").length;
  const gutter = [];
  for (let line = 1; line <= count; line++) {
    gutter.push(html`<div class=${marks.has(line) ? "bad" : ""} title=${marks.get(line) || ""}>${line}</div>`);
  }
  return html`<div class="editor">
    <div class="gutter" aria-hidden="true">${gutter}</div>
    <textarea aria-label=${label} spellcheck="false" rows=${Math.max(12, count + 1)}
      value=${text} onInput=${(e) => onInput(e.target.value)} data-testid="descriptor"></textarea>
  </div>`;
}

/** The dialog; `initial` pre-fills it (e.g. with a finished job's descriptor). */
export function StartJob({ initial, onClose }) {
  const [text, setText] = useState(initial ?? EXAMPLE);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const file = useRef(null);
  const problems = useMemo(
    () => (error?.errors || []).map((p) => ({ ...p, line: lineOf(text, p.location) })),
    [error],
  );
  const marks = new Map(problems.map((p) => [p.line, p.message]));
  const upload = async (event) => {
    const chosen = event.target.files[0];
    if (chosen) setText(await chosen.text());
    setError(null);
  };
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const created = await api("/jobs", { method: "POST", body: text, type: descriptorType(text) });
      onClose();
      navigate(`/jobs/${created.job_id}`);
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Dialog} title="Start a job" onClose=${onClose} wide>
    <div class="dialog-body">
      <p class="muted small" style="margin:0">Paste a descriptor in YAML or JSON (testfleet's or
        ConTest's), or upload a file. See <a href="/docs">the API</a> and docs/jobs.md for every field.</p>
      <${Editor} text=${text} onInput=${(value) => (setText(value), setError(null))} marks=${marks} />
      ${error
        ? html`<div role="alert" data-testid="start-errors">
            ${problems.length
              ? html`<ul class="problems">${problems.map(
                  (p) => html`<li>Line ${p.line}, <code>${p.location}</code>: ${p.message}</li>`,
                )}</ul>`
              : html`<ul class="problems"><li>${error.message}</li></ul>`}
          </div>`
        : null}
    </div>
    <footer class="dialog-foot">
      <input ref=${file} type="file" accept=".yaml,.yml,.json,application/json,application/yaml"
        onChange=${upload} hidden />
      <button type="button" class="button" onClick=${() => file.current.click()}>Upload file…</button>
      <span style="flex:1"></span>
      <button type="button" class="button" onClick=${onClose}>Cancel</button>
      <button type="button" class="button primary" onClick=${start} disabled=${busy || !text.trim()}>Start job</button>
    </footer>
  <//>`;
}
