// A schedule: its timetable and next five fires, the jobs it started, its params and
// descriptor; run now, pause or resume, delete (operators).
import { html, useState } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Chips, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { Fires, ScheduleActions } from "../schedule-parts.js";
import { Link, navigate } from "../router.js";
import { duration, elapsed, toYaml } from "../format.js";

const RECENT = 10;

function Jobs({ jobs, schedule, now }) {
  if (!jobs.length) {
    return html`<p class="muted">No job yet: the first starts at its next fire.</p>`;
  }
  return html`<div class="table-wrap"><table data-testid="schedule-jobs">
      <thead><tr><th>Job</th><th>State</th><th>Name</th><th>Created</th><th class="num">Duration</th></tr></thead>
      <tbody>${jobs.map(
        (job) => html`<tr data-job=${job.job_id}>
          <td><${Link} to=${`/jobs/${job.job_id}`}>#${job.job_id}<//></td>
          <td><${State} state=${job.state} /></td>
          <td>${job.name}</td>
          <td><${Time} at=${job.created_at} now=${now} /></td>
          <td class="num">${duration(elapsed(job.started_at, job.ended_at, now))}</td>
        </tr>`,
      )}</tbody></table></div>
    <p class="small"><${Link} to=${`/jobs${query({ requestor: `schedule:${schedule.name}` })}`}>Every job it started →<//></p>`;
}

export default function Schedule({ params, me }) {
  const id = Number(params.id);
  const now = useNow();
  const [actionError, setActionError] = useState(null);
  const { data, error, refresh } = useLive(
    async (signal) => {
      const schedule = await api(`/schedules/${id}`, { signal });
      const requestor = `schedule:${schedule.name}`;
      const jobs = await api(`/jobs${query({ requestor, limit: RECENT })}`, { signal });
      return [schedule, jobs.jobs];
    },
    ["schedules", "jobs"],
    [id],
  );
  if (!data) {
    return error?.status === 404 || error?.status === 422
      ? html`<${Empty} title=${`There is no schedule ${params.id}`}><p><${Link} to="/schedules">All schedules<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The schedule cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const [schedule, jobs] = data;
  return html`<div class="page-head">
      <h1><span class="muted">Schedule</span> ${schedule.name}</h1>
      <${State} state=${schedule.enabled ? "enabled" : "paused"} />
      ${canOperate(me)
        ? html`<${ScheduleActions} schedule=${schedule} onChanged=${refresh} onError=${setActionError}
            onStarted=${(jobId) => navigate(`/jobs/${jobId}`)} onDeleted=${() => navigate("/schedules")} />`
        : null}
    </div>
    <${ErrorNote} error=${actionError} what="Refused" />
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel"><dl class="facts">
      <div><dt>Cron</dt><dd><code>${schedule.cron}</code></dd></div>
      <div><dt>Time zone</dt><dd>${schedule.timezone}</dd></div>
      <div><dt>A missed fire</dt><dd>${schedule.missed === "once" ? "runs once when a hub is back" : "is skipped"}</dd></div>
      <div><dt>Last fire</dt><dd><${Time} at=${schedule.last_fire_at} now=${now} /></dd></div>
      <div><dt>Last job</dt><dd>${schedule.last_job_id
        ? html`<${Link} to=${`/jobs/${schedule.last_job_id}`}>#${schedule.last_job_id}<//>`
        : "—"}</dd></div>
      <div><dt>Params</dt><dd><${Chips} values=${schedule.params} /></dd></div>
      <div><dt>Added</dt><dd><${Time} at=${schedule.created_at} now=${now} />${schedule.created_by ? ` by ${schedule.created_by}` : ""}</dd></div>
    </dl></section>
    <div class="grid-2">
      <section class="panel"><h2>Next fires</h2><${Fires} schedule=${schedule} now=${now} /></section>
      <section class="panel"><h2>Jobs it started</h2><${Jobs} jobs=${jobs} schedule=${schedule} now=${now} /></section>
    </div>
    <section class="panel"><details><summary><h2 style="display:inline">Descriptor</h2></summary>
      <pre class="descriptor" data-testid="descriptor-yaml">${toYaml(schedule.descriptor)}</pre></details></section>`;
}
