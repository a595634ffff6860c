// Job: its runs, tests, devices and steps as a timeline, the live tail of its log, the
// reasons for anything waiting, failing or retried, its test report and artifacts, and its
// descriptor.
import { html, useCallback, useEffect, useMemo, useRef, useState } from "../html.js";
import { api, query } from "../api.js";
import { live } from "../live.js";
import { canOperate, Empty, ErrorNote, State, Time, useNow } from "../components.js";
import { DeleteJob, JobActions } from "../job-actions.js";
import { Artifacts, useArtifacts } from "../job-artifacts.js";
import { TestReport } from "../job-report.js";
import { Timeline } from "../job-timeline.js";
import { LogLines, LogView, MAX_LINES } from "../job-log.js";
import { StartJob } from "../start-job.js";
import { Link } from "../router.js";
import { duration, elapsed, toYaml } from "../format.js";

const TAIL = 500;

/** The job's status, read again (at most every 200 ms) after each of its events. */
function useJob(id, onLog) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const logSink = useRef(onLog);
  logSink.current = onLog;
  useEffect(() => {
    let alive = true;
    let timer = null;
    let stop = () => {};
    const read = () =>
      api(`/jobs/${id}`).then(
        (found) => alive && (setJob(found), setError(null)),
        (problem) => alive && setError(problem),
      );
    const soon = () => {
      if (!timer) timer = setTimeout(() => ((timer = null), read()), 200);
    };
    Promise.all([read(), api(`/jobs/${id}/events${query({ kind: "log", tail: true, limit: TAIL })}`)]).then(
      ([, tail]) => {
        if (!alive) return;
        tail.events.forEach((event) => logSink.current(event));
        stop = live.followJob(id, tail.next_after, {
          onEvent: (event) => (event.kind === "log" ? logSink.current(event) : soon()),
          onEnd: () => read(),
        });
        soon(); // what happened between the first read and the tail is read again
      },
      (problem) => alive && setError(problem),
    );
    return () => {
      alive = false;
      clearTimeout(timer);
      stop();
    };
  }, [id]);
  return { job, error, refresh: () => api(`/jobs/${id}`).then(setJob, setError) };
}

function Facts({ job, now }) {
  const seconds = elapsed(job.started_at, job.ended_at, now);
  return html`<dl class="facts">
    <div><dt>Requestor</dt><dd>${job.requestor}</dd></div>
    <div><dt>Created</dt><dd><${Time} at=${job.created_at} now=${now} /></dd></div>
    <div><dt>Started</dt><dd><${Time} at=${job.started_at} now=${now} /></dd></div>
    <div><dt>Ended</dt><dd><${Time} at=${job.ended_at} now=${now} /></dd></div>
    <div><dt>Duration</dt><dd>${seconds === null ? "—" : duration(seconds)}</dd></div>
    <div><dt>Runs</dt><dd>${job.runs.length} of ${job.runs_requested || "∞"}</dd></div>
    <div><dt>Tags</dt><dd>${job.tags.length ? job.tags.map((t) => html`<span class="tag">${t}</span>`) : "—"}</dd></div>
    ${job.retried_from
      ? html`<div><dt>Retry of</dt><dd><${Link} to=${`/jobs/${job.retried_from}`}>#${job.retried_from}<//></dd></div>`
      : null}
  </dl>`;
}

/** The job's tasks paused in developer mode. */
function pausedTasks(job) {
  return [...names(job).values()].filter((task) => task.paused);
}

function names(job) {
  const tasks = new Map();
  for (const run of job?.runs || []) {
    for (const test of run.tests) {
      for (const task of test.tasks) tasks.set(task.task_id, task);
    }
  }
  return tasks;
}

function Log({ job, log, selected, onClear }) {
  const tasks = names(job);
  const latest = useRef(tasks);
  latest.current = tasks;
  const source = useCallback((line) => {
    const task = latest.current.get(line.task);
    const step = task?.steps.find((s) => s.index === line.step);
    return `${task ? task.device_name : `task ${line.task}`} · ${step ? step.name : line.step ?? ""}`;
  }, []);
  const keep = useCallback(
    (line) => !selected || (line.task === selected.task_id && line.step === selected.step),
    [selected?.task_id, selected?.step],
  );
  const task = selected && tasks.get(selected.task_id);
  const step = task?.steps.find((s) => s.index === selected.step);
  const download = `/api/v1/jobs/${job.job_id}/logs${selected ? query({ task_id: selected.task_id, step: selected.step }) : ""}`;
  return html`<section class="panel log-panel">
    <div class="panel-head">
      <h2>Log</h2>
      <span class="muted small">${selected && task
        ? html`step <b>${step?.name}</b> on ${task.device_name}
            <button type="button" class="button ghost small" onClick=${onClear}>Show all steps</button>`
        : `all steps, the last ${MAX_LINES} lines at most · select a step to see only its lines`}</span>
      <a class="button small" href=${download} download=${`job-${job.job_id}${selected ? `-task-${selected.task_id}-step-${selected.step}` : ""}.log`}>Download full log</a>
    </div>
    <${LogView} log=${log} keep=${keep} source=${source} sources=${[...tasks.keys()].join(",")}
      empty=${job.state === "queued" || job.state === "running" ? "No output yet; lines appear here as they are written." : "This job wrote no output."} />
  </section>`;
}

export default function Job({ params, me }) {
  const id = Number(params.id);
  const now = useNow();
  const log = useMemo(() => new LogLines(), [id]);
  const [selected, setSelected] = useState(null);
  const [again, setAgain] = useState(false);
  const [actionError, setActionError] = useState(null);
  const { job, error, refresh } = useJob(id, (event) => log.add(event));
  const artifacts = useArtifacts(job);
  if (!Number.isInteger(id) || id < 1) return html`<${Empty} title="There is no such job" />`;
  if (!job) {
    return error?.status === 404
      ? html`<${Empty} title=${`There is no job #${id}`}><p><${Link} to="/jobs">All jobs<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The job cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  return html`<div class="page-head">
      <h1><span class="muted">#${job.job_id}</span> ${job.name}</h1>
      <${State} state=${job.state} />
      <${JobActions} job=${job} onDone=${refresh} onError=${setActionError} />
      ${["running", "paused"].includes(job.state)
        ? html`<${Link} class="button ghost" to=${`/jobs/${job.job_id}/developer`} data-testid="developer-mode">Developer mode<//>`
        : null}
      ${canOperate(me) ? html`<button type="button" class="button ghost" onClick=${() => setAgain(true)}>Start again with changes…</button>` : null}
      <${DeleteJob} job=${job} files=${artifacts.data?.artifacts.length} />
    </div>
    ${again ? html`<${StartJob} initial=${toYaml(job.descriptor) + "\n"} onClose=${() => setAgain(false)} />` : null}
    <${ErrorNote} error=${actionError} what="Refused" />
    <${ErrorNote} error=${error} what="Not current" />
    ${job.error ? html`<div class="note note-error" data-testid="job-error">${job.error}</div>` : null}
    ${pausedTasks(job).map((t) => html`<div class="note note-wait" data-testid="job-paused">Paused (developer mode): task ${t.task_id} on ${t.device_name} — ${t.paused}</div>`)}
    <section class="panel"><${Facts} job=${job} now=${now} /></section>
    <${TestReport} job=${job} />
    <section class="panel" data-testid="timeline"><h2>Runs, tests and steps</h2>
      <${Timeline} job=${job} selected=${selected} onSelect=${setSelected} now=${now} /></section>
    <${Log} job=${job} log=${log} selected=${selected} onClear=${() => setSelected(null)} />
    <${Artifacts} job=${job} listing=${artifacts.data} error=${artifacts.error} now=${now} />
    <section class="panel"><details><summary><h2 style="display:inline">Descriptor</h2></summary>
      <pre class="descriptor" data-testid="descriptor-yaml">${toYaml(job.descriptor)}</pre></details></section>`;
}
