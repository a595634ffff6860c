// Test cases: one case's history across jobs (by name, or class and name), flaky ones
// flagged and first, each run linked to its job; read again as jobs finish.
import { html, useEffect, useState } from "../html.js";
import { api, query } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { CaseName } from "../job-report.js";
import { href, Link, navigate } from "../router.js";
import { duration, plural } from "../format.js";

const FIELDS = ["name", "classname", "job_name"];

function Search({ wanted }) {
  const [draft, setDraft] = useState(wanted);
  useEffect(() => setDraft(wanted), [JSON.stringify(wanted)]);
  const set = (key) => (event) => setDraft({ ...draft, [key]: event.target.value });
  const submit = (event) => {
    event.preventDefault();
    const trimmed = Object.fromEntries(Object.entries(draft).map(([k, v]) => [k, v.trim()]));
    navigate(`/testcases${query(trimmed)}`);
  };
  const field = (key, label, placeholder, required) => html`<div class="field">
    <label for=${`tc-${key}`}>${label}</label>
    <input id=${`tc-${key}`} type="search" value=${draft[key]} placeholder=${placeholder}
      required=${required} onInput=${set(key)} /></div>`;
  return html`<form class="filters" role="search" onSubmit=${submit} aria-label="Find a test case">
    ${field("name", "Case", "test_login or tests.test_a::test_b", true)}
    ${field("classname", "Class", "any class")}
    ${field("job_name", "Job name", "any job")}
    <button type="submit" class="button primary">Show history</button>
  </form>`;
}

/** The runs as small squares, oldest first, each a link to its job. */
function Strip({ runs }) {
  return html`<div class="strip" aria-label="Outcomes, oldest first">${[...runs].reverse().map(
    (run) => {
      const words = `job #${run.job_id}: ${run.outcome}${run.duration !== null ? `, ${duration(run.duration)}` : ""}`;
      return html`<a href=${href(`/jobs/${run.job_id}`)} class=${`fill-${run.outcome}`} title=${words}
        aria-label=${words} onClick=${(e) => (e.preventDefault(), navigate(`/jobs/${run.job_id}`))}></a>`;
    },
  )}</div>`;
}

function History({ history, now }) {
  return html`<section class="panel" data-testid="history" data-flaky=${String(history.flaky)}>
    <div class="history-head">
      <h2><${CaseName} c=${history} /></h2>
      ${history.flaky
        ? html`<span class="badge state-flaky" title="It both passed and failed in jobs of one name">flaky</span>`
        : null}
    </div>
    <p class="muted small">suite ${history.suite || "—"} · in jobs named <b>${history.job_name}</b>
      ${` · ${history.passed} passed, ${history.failed} failed of ${plural(history.runs.length, "run")}`}</p>
    <${Strip} runs=${history.runs} />
    <div class="table-wrap"><table>
      <thead><tr><th>Job</th><th>Outcome</th><th class="num">Duration</th><th>When</th><th>Message</th></tr></thead>
      <tbody>${history.runs.map(
        (run) => html`<tr data-job=${run.job_id}>
          <td><${Link} to=${`/jobs/${run.job_id}`}>#${run.job_id}<//></td>
          <td><${State} state=${run.outcome} /></td>
          <td class="num">${duration(run.duration)}</td>
          <td><${Time} at=${run.at} now=${now} /></td>
          <td class="case-message">${run.message || ""}</td>
        </tr>`,
      )}</tbody>
    </table></div>
  </section>`;
}

export default function TestCases({ query: search }) {
  const now = useNow();
  const wanted = Object.fromEntries(FIELDS.map((key) => [key, search.get(key) || ""]));
  const path = `/testcases${query(wanted)}`;
  const { data, error } = useLive(
    (signal) => (wanted.name ? api(path, { signal }) : Promise.resolve(null)),
    ["jobs"],
    [path],
    1000,
  );
  const head = html`<div class="page-head"><h1>Test cases</h1></div>
    <section class="panel"><${Search} wanted=${wanted} /></section>
    <${ErrorNote} error=${error} what="The history cannot be read" />`;
  if (!wanted.name) {
    return html`${head}<div class="panel"><${Empty} title="Look up a test case">
      <p>Give its name (<code>test_login</code>, or with its class: <code>tests.test_auth::test_login</code>)
        to see how it went in every job, or open one from a job's test report.</p><//></div>`;
  }
  if (!data) return html`${head}${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  if (!data.histories.length) {
    return html`${head}<div class="panel"><${Empty} title=${`No test case is called ${wanted.name}`}>
      <p>Names are matched exactly, as the JUnit report has them. Cases come from the JUnit XML
        artifacts of jobs (<code>artifacts: ["reports/*.xml"]</code>).</p><//></div>`;
  }
  const flaky = data.histories.filter((h) => h.flaky).length;
  return html`${head}
    <p class="muted">${plural(data.histories.length, "case")} of this name${flaky ? html`, <b>${flaky} flaky</b>` : ""}.</p>
    ${data.histories.map((history) => html`<${History} history=${history} now=${now} />`)}`;
}
