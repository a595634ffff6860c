// A webhook (admins): what it is sent for, and its deliveries, newest first, each with every
// attempt (when, which hub, HTTP status, duration, error); ping, redeliver, pause, delete.
import { html, useState } from "../html.js";
import { api, query } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { EVENTS, WebhookActions } from "../webhook-parts.js";
import { Link, navigate } from "../router.js";
import { duration, plural } from "../format.js";

const PAGE = 50;

/** What a delivery is about, in words (its payload is the JSON the receiver got). */
function About({ payload }) {
  if (payload.job) {
    const job = payload.job;
    return html`<${Link} to=${`/jobs/${job.job_id}`}>job #${job.job_id}<//> ${job.name} <${State} state=${job.state} />`;
  }
  if (payload.agent?.name) return html`agent <b>${payload.agent.name}</b> ${payload.agent.reason || ""}`;
  if (payload.devices) return html`${plural(payload.devices.length, "device")} of <b>${payload.agent}</b>`;
  if (payload.event === "ping") return html`<span class="muted">a test delivery</span>`;
  return null;
}

function LastAttempt({ delivery }) {
  const last = delivery.attempt_log.at(-1);
  if (!last) return html`<span class="muted">not tried yet</span>`;
  return html`<span title=${last.error || ""}>${last.status_code ? `HTTP ${last.status_code}` : "no answer"}
    <span class="muted small"> · ${duration(last.duration_ms / 1000)}</span></span>`;
}

function Attempts({ delivery, now, onRedeliver }) {
  return html`<div data-testid="attempts">
    ${delivery.attempt_log.length
      ? html`<table class="attempts"><thead><tr><th class="num">#</th><th>When</th><th>Hub</th><th>Status</th>
          <th class="num">Duration</th><th>Error</th></tr></thead>
          <tbody>${delivery.attempt_log.map(
            (a) => html`<tr data-attempt=${a.number}>
              <td class="num">${a.number}</td>
              <td><${Time} at=${a.at} now=${now} /></td>
              <td>${a.hub}</td>
              <td>${a.status_code ?? html`<span class="muted">—</span>`}</td>
              <td class="num">${duration(a.duration_ms / 1000)}</td>
              <td class="case-message">${a.error || ""}</td>
            </tr>`,
          )}</tbody></table>`
      : html`<p class="muted small">No attempt yet.</p>`}
    <p class="small">${delivery.state === "pending" && delivery.next_attempt_at
        ? html`Next attempt <${Time} at=${delivery.next_attempt_at} now=${now} /> `
        : null}
      ${delivery.state !== "pending"
        ? html`<button type="button" class="button small" onClick=${onRedeliver}>Redeliver</button>`
        : null}</p>
    <details><summary class="small">The JSON body sent</summary>
      <pre class="payload">${JSON.stringify({ ...delivery.payload, delivery_id: delivery.delivery_id }, null, 2)}</pre></details>
  </div>`;
}

function Deliveries({ deliveries, now, onRedeliver }) {
  const [open, setOpen] = useState(() => new Set());
  const toggle = (id) => {
    const next = new Set(open);
    next.has(id) ? next.delete(id) : next.add(id);
    setOpen(next);
  };
  return html`<div class="table-wrap"><table data-testid="deliveries-table">
    <thead><tr><th>Delivery</th><th>Event</th><th>About</th><th>State</th><th class="num">Attempts</th>
      <th>Last attempt</th><th>Created</th><th><span class="skip">Details</span></th></tr></thead>
    ${deliveries.map((d) => {
      const shown = open.has(d.delivery_id);
      return html`<tbody key=${d.delivery_id}><tr data-delivery=${d.delivery_id} class=${shown ? "expanded" : ""}>
          <td>#${d.delivery_id}</td>
          <td><span class="chip">${d.event}</span></td>
          <td><${About} payload=${d.payload} /></td>
          <td><${State} state=${d.state} /></td>
          <td class="num">${d.attempts}</td>
          <td><${LastAttempt} delivery=${d} /></td>
          <td><${Time} at=${d.created_at} now=${now} /></td>
          <td class="actions"><button type="button" class="button small ghost" aria-expanded=${shown}
            onClick=${() => toggle(d.delivery_id)} aria-label=${`Attempts of delivery ${d.delivery_id}`}>
            ${shown ? "Hide" : "Attempts"}</button></td>
        </tr>
        ${shown
          ? html`<tr class="expanded"><td colspan="8"><${Attempts} delivery=${d} now=${now}
              onRedeliver=${() => onRedeliver(d)} /></td></tr>`
          : null}</tbody>`;
    })}
  </table></div>`;
}

export default function Webhook({ params, query: search }) {
  const id = Number(params.id);
  const now = useNow();
  const before = search.get("before") || "";
  const [actionError, setActionError] = useState(null);
  const { data, error, refresh } = useLive(
    (signal) =>
      Promise.all([
        api(`/webhooks/${id}`, { signal }),
        api(`/webhooks/${id}/deliveries${query({ limit: PAGE, before })}`, { signal }),
      ]),
    ["webhooks"],
    [id, before],
  );
  if (!data) {
    return error?.status === 404 || error?.status === 422
      ? html`<${Empty} title=${`There is no webhook ${params.id}`}><p><${Link} to="/webhooks">All webhooks<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The webhook cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const [hook, { deliveries }] = data;
  const redeliver = (delivery) =>
    api(`/webhooks/deliveries/${delivery.delivery_id}/redeliver`, { method: "POST" }).then(refresh, setActionError);
  return html`<div class="page-head">
      <h1><span class="muted">Webhook</span> <span class="mono">${hook.url}</span></h1>
      <${State} state=${hook.active ? "active" : "paused"} />
      <${WebhookActions} hook=${hook} onChanged=${refresh} onError=${setActionError}
        onDeleted=${() => navigate("/webhooks")} />
    </div>
    <${ErrorNote} error=${actionError} what="Refused" />
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel"><dl class="facts">
      <div><dt>Events</dt><dd>${hook.events.map((e) => html`<div title=${EVENTS[e]}><span class="chip">${e}</span></div>`)}</dd></div>
      <div><dt>Jobs tagged</dt><dd>${hook.tags.length ? hook.tags.map((t) => html`<span class="tag">${t}</span>`) : "any"}</dd></div>
      <div><dt>Description</dt><dd>${hook.description || "—"}</dd></div>
      <div><dt>Added</dt><dd><${Time} at=${hook.created_at} now=${now} />${hook.created_by ? ` by ${hook.created_by}` : ""}</dd></div>
      <div><dt>Signature</dt><dd class="small">header <code>X-Testfleet-Signature-256</code>, HMAC-SHA256 of "TIMESTAMP.BODY"</dd></div>
    </dl></section>
    <section class="panel">
      <div class="panel-head"><h2>Deliveries</h2>
        <span class="muted small">newest first; a failed attempt is tried again after 10 s, 30 s, 1 min … for a day</span></div>
      ${deliveries.length
        ? html`<${Deliveries} deliveries=${deliveries} now=${now} onRedeliver=${redeliver} />`
        : html`<${Empty} title=${before ? "No older deliveries" : "No deliveries yet"}>
            <p>Events this webhook is for are delivered as they happen; Ping sends a test delivery now.</p><//>`}
      <div class="pager">
        ${before ? html`<button type="button" class="button ghost" onClick=${() => navigate(`/webhooks/${id}`)}>Newest</button>` : null}
        ${deliveries.length === PAGE
          ? html`<button type="button" class="button" onClick=${() => navigate(`/webhooks/${id}?before=${deliveries.at(-1).delivery_id}`)}>Older →</button>`
          : null}
      </div>
    </section>`;
}
