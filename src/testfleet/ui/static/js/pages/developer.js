// Developer mode of a running job: hold it, pause it at a step boundary, look around on the
// device (its working directory, the last log lines, commands, a screenshot) and resume it.
// One WebSocket to /api/v1/jobs/{id}/developer/ws; see docs/devmode.md.
import { html, useEffect, useRef, useState } from "../html.js";
import { api } from "../api.js";
import { canOperate, Empty, ErrorNote, State } from "../components.js";
import { Link } from "../router.js";
import { localTime } from "../format.js";

const KEPT = 60; // messages shown
const OUTPUT = 200_000; // characters of command output kept per command
const ACTIVE = ["queued", "running", "paused", "cancelling"];
const remembered = (id) => `testfleet-dev-${id}`;

/** The developer socket of job `id` while `on`: status, messages, outputs. */
function useDeveloper(id, on) {
  const [status, setStatus] = useState(null);
  const [messages, setMessages] = useState([]);
  const [outputs, setOutputs] = useState([]);
  const [listing, setListing] = useState(null);
  const [logLines, setLogLines] = useState(null);
  const [shot, setShot] = useState(null);
  const [state, setState] = useState("closed");
  const socket = useRef(null);
  useEffect(() => {
    if (!on) return undefined;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/jobs/${id}/developer/ws`);
    socket.current = ws;
    setState("connecting");
    ws.onopen = () => setState("open");
    ws.onclose = () => {
      setState("closed");
      socket.current = null;
    };
    ws.onmessage = (raw) => {
      const message = JSON.parse(raw.data);
      const { what, data } = message;
      if (what === "status") return setStatus(data);
      if (what === "command_output") {
        return setOutputs((all) =>
          all.map((o) => (o.id === data.command_id ? { ...o, text: (o.text + data.text).slice(-OUTPUT) } : o)),
        );
      }
      if (what === "command_sent") return setOutputs((all) => [{ id: data.command_id, command: data.command, text: "", done: null }, ...all].slice(0, 10));
      if (what === "command_finished") return setOutputs((all) => all.map((o) => (o.id === data.command_id ? { ...o, done: data } : o)));
      if (what === "listing") return setListing(data);
      if (what === "log") return setLogLines(data);
      if (what === "screenshot") return setShot(data);
      if (["session_ended", "job_finished"].includes(what) || message.type === "error") {
        sessionStorage.removeItem(remembered(id));
      }
      setMessages((all) => [{ ...message, at: new Date().toISOString() }, ...all].slice(0, KEPT));
    };
    return () => ws.close();
  }, [id, on]);
  const send = (cmd, args = {}) => socket.current?.send(JSON.stringify({ cmd, ...args }));
  return { status, messages, outputs, listing, logLines, shot, state, send };
}

function Holder({ status }) {
  if (!status?.developer_name) return html`<p class="muted" data-testid="dev-holder">Nobody holds this job in developer mode.</p>`;
  return html`<p data-testid="dev-holder">Held by <b>${status.developer_name}</b> since ${localTime(status.developer_session_started_at)} ·
    <span data-testid="dev-tabs">${status.developer_session_tab_count}</span> tab(s) open</p>`;
}

function Status({ status }) {
  const paused = status.test_execution_paused;
  return html`<dl class="facts" data-testid="dev-status">
    <div><dt>Job</dt><dd><${State} state=${status.job_state} /></dd></div>
    <div><dt>At</dt><dd data-testid="dev-current">${status.current_test_full_name || "—"}</dd></div>
    <div><dt>Paused</dt><dd data-testid="dev-paused">${paused ? paused : "no"}</dd></div>
    <div><dt>Pause before</dt><dd>${status.pause_test_name || "—"}</dd></div>
    <div><dt>On failure</dt><dd>${status.pause_on_failure ? "pause" : "go on"}</dd></div>
    <div><dt>Every step</dt><dd>${status.pause_on_next_command ? "pause" : "no"}</dd></div>
  </dl>
  ${status.tasks.map((t) => html`<p class="small muted">task ${t.task_id} on ${t.device} (${t.agent}${t.agent_connected ? "" : ", disconnected"}): ${t.paused ? html`<b>paused</b> — ${t.paused}` : t.state}${t.current_step ? ` · step ${t.current_step}` : ""}</p>`)}`;
}

function Controls({ status, send, steps }) {
  const [step, setStep] = useState(status.pause_test_name || "");
  return html`<div class="filters" data-testid="dev-controls">
      <label>Pause before step
        <input list="dev-steps" value=${step} onInput=${(e) => setStep(e.target.value)} data-testid="dev-pause-at" />
        <datalist id="dev-steps">${steps.map((s) => html`<option value=${s} />`)}</datalist></label>
      <button type="button" class="button" onClick=${() => send("set_pause_at_test", { name: step || null })}>Set</button>
      <label><input type="checkbox" checked=${status.pause_on_failure}
        onChange=${(e) => send("set_pause_on_failure", { flag: e.target.checked })} /> Pause on failure</label>
      <label><input type="checkbox" checked=${status.pause_on_next_command}
        onChange=${(e) => send("set_pause_on_next_command", { flag: e.target.checked })} /> Pause at every step</label>
    </div>
    <div class="filters">
      <button type="button" class="button" data-testid="dev-resume" disabled=${!status.test_execution_paused}
        onClick=${() => send("resume_test_execution", { options: { ignore_failure: false } })}>Resume</button>
      <button type="button" class="button ghost" disabled=${!status.test_execution_paused}
        onClick=${() => send("resume_test_execution", { options: { ignore_failure: true } })}>Resume, ignoring the failure</button>
      <button type="button" class="button ghost" data-testid="dev-quit"
        onClick=${() => send("quit_development_session", { cancel_job: false })}>Quit (the job runs on)</button>
      <button type="button" class="button danger"
        onClick=${() => send("quit_development_session", { cancel_job: true })}>Quit and cancel the job</button>
    </div>`;
}

function LookAround({ dev, paused }) {
  const [command, setCommand] = useState("ls -la");
  const run = (event) => {
    event.preventDefault();
    if (command.trim()) dev.send("run_command", { command });
  };
  return html`<section class="panel" data-testid="dev-look">
    <div class="panel-head"><h2>Looking around</h2>
      <span class="muted small">${paused ? "the paused task's working directory, on its agent" : "pause the job to look around"}</span></div>
    <div class="filters">
      <button type="button" class="button small" disabled=${!paused} onClick=${() => dev.send("list_directory")} data-testid="dev-ls">List files</button>
      <button type="button" class="button small" onClick=${() => dev.send("log", { lines: 50 })} data-testid="dev-log">Last log lines</button>
      <button type="button" class="button small" disabled=${!paused} onClick=${() => dev.send("screenshot")}>Screenshot</button>
    </div>
    <form class="filters" onSubmit=${run}>
      <input class="grow" value=${command} onInput=${(e) => setCommand(e.target.value)} data-testid="dev-command" aria-label="Command" />
      <button type="submit" class="button" disabled=${!paused} data-testid="dev-run">Run</button>
    </form>
    ${dev.outputs.map((o) => html`<div data-testid="dev-output"><p class="small"><b>$ ${o.command}</b>
        ${o.done ? html` <span class="muted">→ ${o.done.exit_code ?? o.done.error}</span>` : html` <span class="muted">running…</span>`}</p>
      <pre class="log">${o.text}</pre></div>`)}
    ${dev.listing
      ? html`<div data-testid="dev-listing"><p class="small"><b>${dev.listing.directory}</b>${dev.listing.error ? ` — ${dev.listing.error}` : ""}</p>
          <pre class="log">${dev.listing.entries.map((e) => `${e.kind === "dir" ? "d" : e.kind === "link" ? "l" : "-"} ${String(e.size).padStart(10)}  ${e.name}\n`).join("")}</pre></div>`
      : null}
    ${dev.logLines ? html`<p class="small"><b>Last log lines</b> of task ${dev.logLines.task_id}</p><pre class="log" data-testid="dev-log-lines">${dev.logLines.lines.join("\n") || "(no output)"}</pre>` : null}
    ${dev.shot ? html`<img alt="The device's screen" style="max-width:100%" src=${`data:image/png;base64,${dev.shot.png_base64}`} />` : null}
  </section>`;
}

function Messages({ messages }) {
  return html`<section class="panel"><h2>Messages</h2><ul class="small" data-testid="dev-messages">
    ${messages.map((m) => html`<li class=${m.type === "error" ? "field-error" : m.type === "warning" ? "reason" : ""}>
      <b>${m.what}</b> ${m.data?.message || m.data?.reason || ""}</li>`)}</ul></section>`;
}

export default function Developer({ params, me }) {
  const id = Number(params.id);
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const operator = canOperate(me);
  const [on, setOn] = useState(() => !operator || sessionStorage.getItem(remembered(id)) === "1");
  const dev = useDeveloper(id, on);
  useEffect(() => {
    api(`/jobs/${id}`).then(setJob, setError);
  }, [id, dev.status?.job_state]);
  if (!Number.isInteger(id) || id < 1) return html`<${Empty} title="There is no such job" />`;
  if (!job) return html`<${ErrorNote} error=${error} what="The job cannot be read" />`;
  const start = () => {
    sessionStorage.setItem(remembered(id), "1");
    setOn(true);
  };
  const steps = [...new Set((job.descriptor.tests || []).flatMap((t) => (t.steps || []).map((s) => s.name)))];
  const holding = operator && dev.status?.developer_name === me.name;
  return html`<div class="page-head">
      <h1><span class="muted">#${job.job_id}</span> ${job.name} · developer mode</h1>
      <${State} state=${dev.status?.job_state || job.state} />
      <${Link} to=${`/jobs/${id}`}>Back to the job<//>
    </div>
    ${operator && !on
      ? html`<section class="panel"><p>Take control of this job: pause it at a step, look around on its device, resume it. One developer at a time.</p>
          <button type="button" class="button" data-testid="dev-start" disabled=${!ACTIVE.includes(job.state)} onClick=${start}>Start developer mode</button>
          ${ACTIVE.includes(job.state) ? null : html`<p class="muted">The job is ${job.state}: developer mode needs a running job.</p>`}</section>`
      : null}
    ${on && !operator ? html`<div class="note note-info">You see the developer status read-only; control needs the operator role.</div>` : null}
    ${dev.status
      ? html`<section class="panel"><h2>Status</h2><${Holder} status=${dev.status} /><${Status} status=${dev.status} />
          ${holding && dev.state === "open" ? html`<${Controls} status=${dev.status} send=${dev.send} steps=${steps} />` : null}</section>`
      : null}
    ${holding && dev.state === "open" ? html`<${LookAround} dev=${dev} paused=${Boolean(dev.status?.test_execution_paused)} />` : null}
    ${on ? html`<${Messages} messages=${dev.messages} />` : null}`;
}
