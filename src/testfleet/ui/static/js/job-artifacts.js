// A job's artifacts: every file its steps kept, with size and checksum, one by one or all in
// a zip; read again as steps finish, so files appear while the job runs.
import { html, useEffect, useState } from "./html.js";
import { api } from "./api.js";
import { Empty, ErrorNote, Time } from "./components.js";
import { bytes, plural } from "./format.js";

/** What changes when a step may have stored files: the job's state and its ended steps. */
function progress(job) {
  let ended = 0;
  for (const run of job.runs) {
    for (const test of run.tests) {
      for (const task of test.tasks) ended += task.steps.filter((s) => s.ended_at).length;
    }
  }
  return `${job.state}:${ended}`;
}

/** The job's artifact listing, read again whenever a step of it ends. */
export function useArtifacts(job) {
  const [state, setState] = useState({ data: null, error: null });
  const key = job ? progress(job) : "";
  useEffect(() => {
    if (!job) return;
    const controller = new AbortController();
    api(`/jobs/${job.job_id}/artifacts`, { signal: controller.signal }).then(
      (data) => setState({ data, error: null }),
      (error) => error.name !== "AbortError" && setState((old) => ({ ...old, error })),
    );
    return () => controller.abort();
  }, [job?.job_id, key]);
  return state;
}

function steps(job) {
  const names = new Map();
  for (const run of job.runs) {
    for (const test of run.tests) {
      for (const task of test.tasks) {
        task.steps.forEach((step) => names.set(`${task.task_id}:${step.index}`, step.name));
      }
    }
  }
  return names;
}

function Report({ artifact }) {
  if (artifact.report_error) {
    return html`<span class="badge state-incomplete" title=${artifact.report_error}>not read</span>`;
  }
  if (artifact.report_cases === null) return null;
  return html`<span class="muted" title="Read as a JUnit report">JUnit, ${plural(artifact.report_cases, "case")}</span>`;
}

function Checksum({ sha }) {
  const [copied, setCopied] = useState(false);
  const copy = () => navigator.clipboard?.writeText(sha).then(() => setCopied(true));
  return html`<span class="sha"><code title=${`SHA-256 ${sha}`}>${sha}</code>
    ${navigator.clipboard
      ? html`<button type="button" class="button ghost small" onClick=${copy} aria-label="Copy the SHA-256">
          ${copied ? "Copied" : "Copy"}</button>`
      : null}</span>`;
}

/** The artifacts section of a job's page. */
export function Artifacts({ job, listing, error, now }) {
  const running = !["completed", "failed", "cancelled"].includes(job.state);
  const names = steps(job);
  const files = listing?.artifacts || [];
  return html`<section class="panel" data-testid="artifacts">
    <div class="panel-head"><h2>Artifacts</h2>
      ${files.length
        ? html`<span class="muted small">${plural(files.length, "file")}, ${bytes(listing.total_size)}</span>
            <a class="button small" href=${listing.zip} download>Download all (zip)</a>`
        : null}
    </div>
    <${ErrorNote} error=${error} what="The artifacts cannot be listed" />
    ${!listing
      ? null
      : !files.length
        ? html`<${Empty} title=${running ? "No files yet" : "This job kept no files"}>
            <p>${running ? "Files appear here as the steps that keep them end. " : ""}A step keeps files
              with <code>artifacts: ["reports/*.xml"]</code>; JUnit XML reports among them become the test report.</p><//>`
        : html`<div class="table-wrap"><table data-testid="artifacts-table">
            <thead><tr><th>File</th><th>Device</th><th class="hide-narrow">Step</th><th class="num">Size</th>
              <th class="hide-narrow">SHA-256</th><th>Report</th><th class="hide-narrow">Stored</th></tr></thead>
            <tbody>${files.map(
              (a) => html`<tr data-artifact=${a.path}>
                <td><a href=${a.download} download class="mono">${a.path}</a></td>
                <td>${a.device_name}</td>
                <td class="hide-narrow">${names.get(`${a.task_id}:${a.step_index}`) ?? `step ${a.step_index}`}</td>
                <td class="num">${bytes(a.size)}</td>
                <td class="hide-narrow"><${Checksum} sha=${a.sha256} /></td>
                <td><${Report} artifact=${a} /></td>
                <td class="hide-narrow"><${Time} at=${a.created_at} now=${now} /></td>
              </tr>`,
            )}</tbody></table></div>`}
  </section>`;
}
