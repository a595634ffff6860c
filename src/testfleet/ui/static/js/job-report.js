// A job's test report: the counts as a bar, the failed cases first with their message and
// text, every case on request (by outcome, page by page), each linked to its history.
import { html, useEffect, useRef, useState } from "./html.js";
import { api, query } from "./api.js";
import { ErrorNote, State } from "./components.js";
import { Meter } from "./charts.js";
import { Link } from "./router.js";
import { duration, plural } from "./format.js";

export const OUTCOMES = ["failed", "error", "skipped", "passed"];
const OPEN_FAILURES = 3;
const PAGE = 100;

/** The UI path of a case's history across jobs. */
export const historyPath = (c) => `/testcases${query({ name: c.name, classname: c.classname })}`;

/** "tests.test_login.test_ok" as the case's class (muted) and name. */
export function CaseName({ c }) {
  return html`<span class="case-name">${c.classname
    ? html`<span class="muted">${c.classname}.</span>`
    : null}${c.name}</span>`;
}

function FailedCase({ c, open }) {
  return html`<details class="case" open=${open} data-case=${c.name}>
    <summary>
      <${State} state=${c.outcome} /> <${CaseName} c=${c} />
      ${c.duration !== null ? html` <span class="muted small">${duration(c.duration)}</span>` : null}
      ${c.message ? html`<div class="case-message">${c.message}</div>` : null}
    </summary>
    ${c.detail
      ? html`<pre class="case-detail" data-testid="case-detail">${c.detail}</pre>`
      : html`<p class="muted small">The report has no text for this case.</p>`}
    <p class="small"><${Link} to=${historyPath(c)}>History across jobs →<//>
      <span class="muted"> · suite ${c.suite || "—"}</span></p>
  </details>`;
}

function Counts({ counts }) {
  return html`<span class="case-counts" data-testid="case-counts">
    ${OUTCOMES.map(
      (key) => html`<span data-outcome=${key}><i class=${`fill-${key}`}></i><b>${counts[key]}</b> ${key}</span>`,
    )}
    <span class="muted">of ${plural(counts.total, "case")}</span>
  </span>`;
}

/** Every case of the job, failed first, filtered by outcome, a page at a time. */
function AllCases({ jobId, total }) {
  const [outcome, setOutcome] = useState("");
  const [pages, setPages] = useState({ cases: [], next: null });
  const [error, setError] = useState(null);
  const latest = useRef(0);
  const read = (cursor, previous) => {
    const asked = ++latest.current; // an answer to an older question is dropped
    api(`/jobs/${jobId}/testcases${query({ outcome, limit: PAGE, cursor })}`).then(
      (found) => asked === latest.current && (setPages({ cases: [...previous, ...found.cases], next: found.next_cursor }), setError(null)),
      (problem) => asked === latest.current && setError(problem),
    );
  };
  useEffect(() => read("", []), [jobId, outcome, total]);
  return html`<div class="filters">
      <div class="field"><label for="case-outcome">Outcome</label>
        <select id="case-outcome" value=${outcome} onChange=${(e) => setOutcome(e.target.value)}>
          <option value="">Any outcome</option>
          ${OUTCOMES.map((o) => html`<option value=${o}>${o}</option>`)}
        </select></div>
    </div>
    <${ErrorNote} error=${error} what="The cases cannot be read" />
    ${pages.cases.length
      ? html`<div class="table-wrap"><table data-testid="cases-table">
          <thead><tr><th>Outcome</th><th>Case</th><th class="hide-narrow">Suite</th>
            <th class="num">Duration</th><th>Message</th></tr></thead>
          <tbody>${pages.cases.map(
            (c) => html`<tr data-case=${c.name}>
              <td><${State} state=${c.outcome} /></td>
              <td><${Link} to=${historyPath(c)} title="History across jobs"><${CaseName} c=${c} /><//></td>
              <td class="hide-narrow">${c.suite}</td>
              <td class="num">${duration(c.duration)}</td>
              <td class="case-message">${c.message || ""}</td>
            </tr>`,
          )}</tbody></table></div>`
      : html`<p class="muted">No case ${outcome ? `ended ${outcome}` : "was recorded"}.</p>`}
    ${pages.next
      ? html`<div class="pager"><button type="button" class="button" onClick=${() => read(pages.next, pages.cases)}>
          Show ${PAGE} more</button></div>`
      : null}`;
}

/** The test report section of a job's page (nothing when the job has no JUnit report). */
export function TestReport({ job }) {
  const report = job.test_report;
  const [all, setAll] = useState(false);
  if (!report) return null;
  const { counts, failed_cases: failed } = report;
  const bad = counts.failed + counts.error;
  return html`<section class="panel" data-testid="test-report">
    <div class="panel-head"><h2>Test report</h2><${Counts} counts=${counts} /></div>
    <${Meter} label="Test cases by outcome" parts=${OUTCOMES.map((key) => ({ key, value: counts[key] }))} />
    ${report.report_errors.map(
      (problem) => html`<p class="note note-wait" data-testid="report-error">Not read as a test report: ${problem}</p>`,
    )}
    ${bad
      ? html`<h3 class="cases-head">Failed first${failed.length < bad ? ` (the first ${failed.length} of ${bad})` : ""}</h3>
          <div class="cases" data-testid="failed-cases">${failed.map(
            (c, n) => html`<${FailedCase} key=${c.case_id} c=${c} open=${n < OPEN_FAILURES} />`,
          )}</div>`
      : counts.total
        ? html`<p class="note note-ok">No case failed${counts.skipped ? ` (${counts.skipped} skipped)` : ""}.</p>`
        : null}
    ${counts.total
      ? html`<details class="all-cases" open=${all} onToggle=${(e) => setAll(e.target.open)}>
          <summary>All ${plural(counts.total, "case")}</summary>
          ${all ? html`<${AllCases} jobId=${job.job_id} total=${counts.total} />` : null}
        </details>`
      : null}
  </section>`;
}
