// Jobs: every job, newest first, filtered and paged (by cursor: fast at any history length),
// updating live; start, stop and retry for operators.
import { html, useEffect, useState } from "../html.js";
import { api, query } from "../api.js";
import { FILTERS, WINDOWS, filtersOf, jobsRequest as request } from "../jobs-query.js";
import { canOperate, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { JobActions } from "../job-actions.js";
import { StartJob } from "../start-job.js";
import { Link, navigate } from "../router.js";
import { duration, elapsed } from "../format.js";

const STATES = ["queued", "running", "paused", "cancelling", "completed", "failed", "cancelled"];

function go(filters, cursor, replace) {
  const search = query({ ...filters, cursor });
  navigate(`/jobs${search}`, { replace });
}

function Filters({ filters }) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  useEffect(() => {
    if (JSON.stringify(draft) === JSON.stringify(filters)) return;
    const timer = setTimeout(() => go(draft, "", true), 350);
    return () => clearTimeout(timer);
  }, [JSON.stringify(draft)]);
  const set = (key) => (event) => setDraft({ ...draft, [key]: event.target.value });
  const text = (key, label, placeholder) => html`<div class="field">
    <label for=${`f-${key}`}>${label}</label>
    <input id=${`f-${key}`} type="search" value=${draft[key]} placeholder=${placeholder} onInput=${set(key)} />
  </div>`;
  return html`<form class="filters" role="search" onSubmit=${(e) => (e.preventDefault(), go(draft, ""))}>
    <div class="field"><label for="f-state">State</label>
      <select id="f-state" value=${draft.state} onChange=${set("state")}>
        <option value="">Any state</option>
        ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></div>
    ${text("name", "Name", "part of a name")}
    ${text("tag", "Tag", "nightly")}
    ${text("requestor", "Requestor", "alice")}
    <div class="field"><label for="f-since">Created</label>
      <select id="f-since" value=${draft.since} onChange=${set("since")}>
        ${Object.entries(WINDOWS).map(([value, label]) => html`<option value=${value}>${label}</option>`)}
      </select></div>
    ${FILTERS.some((key) => filters[key])
      ? html`<button type="button" class="button ghost" onClick=${() => go({}, "")}>Clear filters</button>`
      : null}
  </form>`;
}

function Rows({ jobs, now, onError, refresh }) {
  return html`<div class="table-wrap"><table data-testid="jobs-table">
    <thead><tr>
      <th>Job</th><th>State</th><th>Name</th><th class="hide-narrow">Tags</th>
      <th class="hide-narrow">Requestor</th><th>Created</th><th class="num">Duration</th><th><span class="skip">Actions</span></th>
    </tr></thead>
    <tbody>${jobs.map(
      (job) => html`<tr data-job=${job.job_id}>
        <td><${Link} to=${`/jobs/${job.job_id}`}>#${job.job_id}<//></td>
        <td><${State} state=${job.state} /></td>
        <td><${Link} to=${`/jobs/${job.job_id}`}>${job.name}<//></td>
        <td class="hide-narrow">${job.tags.map((tag) => html`<span class="tag">${tag}</span>`)}</td>
        <td class="hide-narrow">${job.requestor}</td>
        <td><${Time} at=${job.created_at} now=${now} /></td>
        <td class="num">${duration(elapsed(job.started_at, job.ended_at, now))}</td>
        <td class="actions"><${JobActions} job=${job} small onDone=${refresh} onError=${onError} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

const cursors = []; // the pages before this one, for "Newer"


export default function Jobs({ query: search, me }) {
  const now = useNow();
  const filters = filtersOf(search);
  const cursor = search.get("cursor") || "";
  const [starting, setStarting] = useState(false);
  const [actionError, setActionError] = useState(null);
  const key = JSON.stringify([filters, cursor]);
  const { data, error, loading, refresh } = useLive(
    (signal) => api(request(filters, cursor), { signal }),
    ["jobs"],
    [key],
  );
  useEffect(() => {
    if (data && !cursor) performance.mark("testfleet:jobs-rendered");
  }, [data]);
  const older = () => {
    cursors.push(cursor);
    go(filters, data.next_cursor);
  };
  const newer = () => go(filters, cursors.pop() || "");
  const filtered = FILTERS.some((k) => filters[k]);
  return html`<div class="page-head"><h1>Jobs</h1>
      ${canOperate(me)
        ? html`<button type="button" class="button primary" onClick=${() => setStarting(true)}>Start job</button>`
        : null}
    </div>
    ${starting ? html`<${StartJob} onClose=${() => setStarting(false)} />` : null}
    <section class="panel">
      <${Filters} filters=${filters} />
      <${ErrorNote} error=${error} what="The jobs cannot be listed" />
      <${ErrorNote} error=${actionError} what="Refused" />
      ${data && data.jobs.length
        ? html`<${Rows} jobs=${data.jobs} now=${now} onError=${setActionError} refresh=${refresh} />`
        : data
          ? filtered || cursor
            ? html`<${Empty} title="No job matches these filters"><p>Change or clear the filters.</p><//>`
            : html`<${Empty} title="No jobs yet">
                <p>${canOperate(me) ? "Start one with the Start job button, or with " : "Start one with "}
                <code>testfleet job start examples/jobs/smoke.yaml</code>.</p><//>`
          : loading
            ? html`<p class="muted loading">Loading…</p>`
            : null}
      <div class="pager">
        ${cursor ? html`<button type="button" class="button" onClick=${newer}>← Newer</button>` : null}
        ${cursor ? html`<button type="button" class="button ghost" onClick=${() => (cursors.length = 0, go(filters, ""))}>Newest</button>` : null}
        ${data?.next_cursor ? html`<button type="button" class="button" onClick=${older}>Older →</button>` : null}
      </div>
    </section>`;
}
