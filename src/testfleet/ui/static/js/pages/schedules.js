// Schedules: every descriptor started on a timetable, with its next fire (in the viewer's
// zone, relative too) and its last job; add, run now, pause or resume, delete (operators).
import { html, useState } from "../html.js";
import { api } from "../api.js";
import { canOperate, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { AddSchedule, NextFire, ScheduleActions } from "../schedule-parts.js";
import { Link, navigate } from "../router.js";
import { viewerZone } from "../format.js";

function Rows({ schedules, now, me, refresh, onError, onStarted }) {
  return html`<div class="table-wrap"><table data-testid="schedules-table">
    <thead><tr><th>Name</th><th>Timetable</th><th>Next fire <span class="muted">(${viewerZone()})</span></th>
      <th class="hide-narrow">Last fire</th><th>Last job</th><th>State</th>
      ${canOperate(me) ? html`<th><span class="skip">Actions</span></th>` : null}</tr></thead>
    <tbody>${schedules.map(
      (s) => html`<tr data-schedule=${s.name}>
        <td><${Link} to=${`/schedules/${s.schedule_id}`}><strong>${s.name}</strong><//></td>
        <td><code>${s.cron}</code> <span class="muted small">${s.timezone}</span></td>
        <td><${NextFire} schedule=${s} now=${now} /></td>
        <td class="hide-narrow"><${Time} at=${s.last_fire_at} now=${now} /></td>
        <td data-testid="last-job">${s.last_job_id
          ? html`<${Link} to=${`/jobs/${s.last_job_id}`}>#${s.last_job_id}<//>`
          : html`<span class="muted">none yet</span>`}</td>
        <td><${State} state=${s.enabled ? "enabled" : "paused"} /></td>
        ${canOperate(me)
          ? html`<td class="actions"><${ScheduleActions} schedule=${s} small onChanged=${refresh}
              onDeleted=${refresh} onError=${onError} onStarted=${onStarted} /></td>`
          : null}
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export default function Schedules({ me }) {
  const now = useNow();
  const [adding, setAdding] = useState(false);
  const [started, setStarted] = useState(null);
  const [actionError, setActionError] = useState(null);
  const { data, error, refresh } = useLive((signal) => api("/schedules", { signal }), ["schedules", "jobs"], []);
  const schedules = data?.schedules || [];
  return html`<div class="page-head"><h1>Schedules</h1>
      ${canOperate(me)
        ? html`<button type="button" class="button primary" onClick=${() => setAdding(true)}>Add schedule</button>`
        : null}</div>
    ${adding
      ? html`<${AddSchedule} onClose=${() => setAdding(false)}
          onCreated=${(created) => (setAdding(false), navigate(`/schedules/${created.schedule_id}`))} />`
      : null}
    ${started
      ? html`<div class="note note-info" role="status">Started <${Link} to=${`/jobs/${started}`}>job #${started}<//>.</div>`
      : null}
    <${ErrorNote} error=${error} what="The schedules cannot be listed" />
    <${ErrorNote} error=${actionError} what="Refused" />
    <section class="panel">
      ${!data
        ? null
        : schedules.length
          ? html`<${Rows} schedules=${schedules} now=${now} me=${me} refresh=${refresh}
              onError=${setActionError} onStarted=${setStarted} />`
          : html`<${Empty} title="No schedules yet">
              <p>A schedule starts a job descriptor on a cron timetable, in the time zone you give.
                ${canOperate(me) ? "Add one with Add schedule, or " : "An operator adds one "}with
                <code>testfleet schedule add FILE --cron "0 2 * * *" --tz ${viewerZone()}</code>.</p><//>`}
    </section>`;
}
