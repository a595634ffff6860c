// Stop, Retry and Delete, for users whose role may; the API refuses the others anyway.
import { html, useState } from "./html.js";
import { api } from "./api.js";
import { canOperate, Confirm, useMe } from "./components.js";
import { navigate } from "./router.js";
import { plural } from "./format.js";

const ACTIVE = ["queued", "running", "paused"];
const FINISHED = ["completed", "failed", "cancelled"];

export function JobActions({ job, onDone, onError, small }) {
  const me = useMe();
  const [busy, setBusy] = useState(false);
  if (!canOperate(me)) return null;
  const act = async (what) => {
    setBusy(true);
    try {
      const answer = await api(`/jobs/${job.job_id}/${what}`, { method: "POST" });
      if (what === "retry") navigate(`/jobs/${answer.job_id}`);
      onDone?.();
    } catch (error) {
      onError?.(error);
    } finally {
      setBusy(false);
    }
  };
  const size = small ? "button small" : "button";
  return html`${ACTIVE.includes(job.state)
      ? html`<button type="button" class=${`${size} danger`} disabled=${busy}
          onClick=${() => act("stop")} aria-label=${`Stop job ${job.job_id}`}>Stop</button>`
      : null}
    ${FINISHED.includes(job.state)
      ? html`<button type="button" class=${size} disabled=${busy}
          onClick=${() => act("retry")} aria-label=${`Retry job ${job.job_id}`}>Retry</button>`
      : null}`;
}

/** Delete a finished job (after asking), then go to the jobs list. */
export function DeleteJob({ job, files }) {
  const me = useMe();
  const [asking, setAsking] = useState(false);
  if (!canOperate(me) || !FINISHED.includes(job.state)) return null;
  const remove = async () => {
    await api(`/jobs/${job.job_id}`, { method: "DELETE" });
    navigate("/jobs");
  };
  return html`<button type="button" class="button danger" onClick=${() => setAsking(true)}
      aria-label=${`Delete job ${job.job_id}`}>Delete</button>
    ${asking
      ? html`<${Confirm} title=${`Delete job #${job.job_id}?`} action="Delete job"
          onConfirm=${remove} onClose=${() => setAsking(false)}>
          <p style="margin:0">Job <b>${job.name}</b> goes with its log, events and test cases${
            files ? html` and its ${plural(files, "artifact file")}` : null}. This cannot be undone.</p>
        <//>`
      : null}`;
}
