// Stop and Retry, for users whose role may; the API refuses the others anyway.
import { html, useState } from "./html.js";
import { api } from "./api.js";
import { canOperate, useMe } from "./components.js";
import { navigate } from "./router.js";

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
