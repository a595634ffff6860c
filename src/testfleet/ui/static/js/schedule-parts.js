// Schedules: the form that adds one (cron, time zone, a descriptor pasted or uploaded,
// params), the actions on one (run now, pause or resume, delete) and its next fire times.
import { html, useMemo, useRef, useState } from "./html.js";
import { api } from "./api.js";
import { Confirm, Dialog, Time } from "./components.js";
import { EXAMPLE, Editor } from "./start-job.js";
import { lineOf } from "./pointer.js";
import { localTime, viewerZone, zoneTime } from "./format.js";

const ZONES = ["UTC", ...(Intl.supportedValuesOf?.("timeZone") || [])];
const DESCRIPTOR = "/descriptor";

/** "version=1.2" lines as params; a line without "=" is an error naming it. */
export function parseParams(text) {
  const params = {};
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (!line || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`line ${n + 1}: give a parameter as NAME=VALUE`);
    params[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return params;
}

/** The line of the descriptor's text a hub problem is at (its pointer, or "at line N"). */
function descriptorLine(text, problem) {
  const said = problem.message.match(/at line (\d+)/);
  if (problem.location === DESCRIPTOR && said) return Number(said[1]);
  return lineOf(text, problem.location.slice(DESCRIPTOR.length) || "/");
}

/** The dialog that adds a schedule; `onCreated` gets the new schedule. */
export function AddSchedule({ onCreated, onClose }) {
  const [form, setForm] = useState({ name: "", cron: "0 2 * * *", timezone: viewerZone(), missed: "once", params: "" });
  const [text, setText] = useState(EXAMPLE);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const file = useRef(null);
  const set = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  const problems = error?.errors || [];
  const at = (location) => problems.filter((p) => p.location === location || p.location.startsWith(`${location}/`));
  const inText = useMemo(
    () => at(DESCRIPTOR).map((p) => ({ ...p, line: descriptorLine(text, p) })),
    [error],
  );
  const marks = new Map(inText.map((p) => [p.line, p.message]));
  const upload = async (event) => {
    const chosen = event.target.files[0];
    if (chosen) setText(await chosen.text());
    setError(null);
  };
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const params = parseParams(form.params);
      const body = { name: form.name.trim(), cron: form.cron.trim(), timezone: form.timezone.trim(), missed: form.missed, params, descriptor: text };
      onCreated(await api("/schedules", { method: "POST", body }));
    } catch (problem) {
      setError(problem.errors ? problem : { message: `Params: ${problem.message}`, errors: [{ location: "/params", message: problem.message }] });
      setBusy(false);
    }
  };
  const note = (location) =>
    at(location).map((p) => html`<p class="field-error" role="alert">${p.location !== location ? `${p.location}: ` : ""}${p.message}</p>`);
  const known = ["/name", "/cron", "/timezone", "/missed", "/params", DESCRIPTOR];
  const other = error && !problems.some((p) => known.some((k) => p.location === k || p.location.startsWith(`${k}/`)));
  return html`<${Dialog} title="Add a schedule" onClose=${onClose} wide>
    <form onSubmit=${submit}>
      <div class="dialog-body">
        <div class="form-grid">
          <div class="field"><label for="sc-name">Name</label>
            <input id="sc-name" required value=${form.name} onInput=${set("name")} placeholder="nightly" />${note("/name")}</div>
          <div class="field"><label for="sc-cron">Cron</label>
            <input id="sc-cron" required class="mono" value=${form.cron} onInput=${set("cron")} />
            <span class="hint">minute hour day month weekday: "0 2 * * *" is 02:00 every day</span>${note("/cron")}</div>
          <div class="field"><label for="sc-zone">Time zone</label>
            <input id="sc-zone" required list="sc-zones" value=${form.timezone} onInput=${set("timezone")} />
            <datalist id="sc-zones">${ZONES.map((zone) => html`<option value=${zone} />`)}</datalist>
            <span class="hint">the cron is read there, daylight saving time included</span>${note("/timezone")}</div>
          <div class="field"><label for="sc-missed">A fire missed while no hub ran</label>
            <select id="sc-missed" value=${form.missed} onChange=${set("missed")}>
              <option value="once">runs once when a hub is back</option>
              <option value="skip">is skipped</option>
            </select></div>
        </div>
        <div class="field"><label for="sc-params">Params</label>
          <textarea id="sc-params" class="mono" rows="2" value=${form.params} onInput=${set("params")}
            placeholder="version=1.2 (one per line; overrides the descriptor's params)"></textarea>${note("/params")}</div>
        <div class="field"><label>Descriptor <span class="hint">YAML or JSON, pasted or uploaded</span></label>
          <${Editor} text=${text} onInput=${(value) => (setText(value), setError(null))} marks=${marks} /></div>
        ${inText.length
          ? html`<ul class="problems" role="alert" data-testid="schedule-errors">${inText.map(
              (p) => html`<li>Line ${p.line}, <code>${p.location}</code>: ${p.message}</li>`,
            )}</ul>`
          : null}
        ${other ? html`<p class="field-error" role="alert">${error.message}</p>` : null}
      </div>
      <footer class="dialog-foot">
        <input ref=${file} type="file" accept=".yaml,.yml,.json,application/json,application/yaml" onChange=${upload} hidden />
        <button type="button" class="button" onClick=${() => file.current.click()}>Upload file…</button>
        <span style="flex:1"></span>
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button primary" disabled=${busy || !text.trim()}>Add schedule</button>
      </footer>
    </form>
  <//>`;
}

/** Run now, Pause/Resume and Delete for one schedule; `onStarted(jobId)` after Run now. */
export function ScheduleActions({ schedule, onChanged, onStarted, onDeleted, onError, small }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const path = `/schedules/${schedule.schedule_id}`;
  const act = async (work) => {
    setBusy(true);
    try {
      await work();
      onChanged?.();
    } catch (problem) {
      onError?.(problem);
    } finally {
      setBusy(false);
    }
  };
  const run = () => act(async () => onStarted?.((await api(`${path}/run`, { method: "POST" })).job_id));
  const flip = () => act(() => api(path, { method: "PATCH", body: { enabled: !schedule.enabled } }));
  const size = small ? "button small" : "button";
  return html`<button type="button" class=${size} disabled=${busy} onClick=${run}
      aria-label=${`Run schedule ${schedule.name} now`}>Run now</button>
    <button type="button" class=${size} disabled=${busy} onClick=${flip}
      aria-label=${`${schedule.enabled ? "Pause" : "Resume"} schedule ${schedule.name}`}>${schedule.enabled ? "Pause" : "Resume"}</button>
    <button type="button" class=${`${size} danger`} onClick=${() => setAsking(true)}
      aria-label=${`Delete schedule ${schedule.name}`}>Delete</button>
    ${asking
      ? html`<${Confirm} title=${`Delete schedule ${schedule.name}?`} action="Delete schedule" onClose=${() => setAsking(false)}
          onConfirm=${async () => (await api(path, { method: "DELETE" }), onDeleted?.())}>
          <p style="margin:0">It fires no more. The jobs it started stay.</p>
        <//>`
      : null}`;
}

/** The next fire, relative ("in 3 hr."), with its date and time in the viewer's zone. */
export function NextFire({ schedule, now }) {
  if (!schedule.enabled) return html`<span class="muted">paused</span>`;
  const next = schedule.next_fires[0];
  if (!next) return html`<span class="muted">never</span>`;
  return html`<span data-testid="next-fire"><${Time} at=${next} now=${now} />
    <span class="muted small"> · ${localTime(next)}</span></span>`;
}

/** The next fire times: in the viewer's zone, relative, and in the schedule's own zone. */
export function Fires({ schedule, now }) {
  const own = schedule.timezone !== viewerZone();
  if (!schedule.next_fires.length) {
    return html`<p class="muted">${schedule.enabled ? "It never fires again." : "Paused: it fires again once resumed."}</p>`;
  }
  return html`<ol class="fires" data-testid="next-fires">${schedule.next_fires.map(
    (fire) => html`<li>${localTime(fire)} <span class="muted small">(<${Time} at=${fire} now=${now} />${
      own ? html`; ${zoneTime(fire, schedule.timezone)} ${schedule.timezone}` : null})</span></li>`,
  )}</ol>`;
}
