// Webhooks (admins): every registered URL with its events, add one (its secret shown once),
// ping (then its deliveries are shown), pause or resume, delete; each links to its deliveries.
import { html, useState } from "../html.js";
import { api } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { AddWebhook, WebhookActions } from "../webhook-parts.js";
import { Link, navigate } from "../router.js";

/** The secret of a webhook just made: shown here once, never again. */
export function NewSecret({ hook, onDone }) {
  return html`<div class="note note-info" role="status" data-testid="new-webhook">
    <p>Webhook <b>${hook.url}</b> added. Copy its secret now: it is shown only this once, and
      receivers check each delivery's signature with it.</p>
    <div class="secret" data-testid="secret">${hook.secret}</div>
    <p>${navigator.clipboard
        ? html`<button type="button" class="button small" onClick=${() => navigator.clipboard.writeText(hook.secret)}>Copy</button> `
        : null}
      <button type="button" class="button ghost small" onClick=${onDone}>Done</button></p>
  </div>`;
}

function Rows({ hooks, now, refresh, onError }) {
  return html`<div class="table-wrap"><table data-testid="webhooks-table">
    <thead><tr><th>URL</th><th>Events</th><th class="hide-narrow">Jobs tagged</th><th>State</th>
      <th class="hide-narrow">Added</th><th><span class="skip">Actions</span></th></tr></thead>
    <tbody>${hooks.map(
      (hook) => html`<tr data-webhook=${hook.webhook_id}>
        <td><${Link} to=${`/webhooks/${hook.webhook_id}`} class="mono">${hook.url}<//>
          ${hook.description ? html`<div class="muted small">${hook.description}</div>` : null}</td>
        <td><span class="chips">${hook.events.map((e) => html`<span class="chip">${e}</span>`)}</span></td>
        <td class="hide-narrow">${hook.tags.length ? hook.tags.map((t) => html`<span class="tag">${t}</span>`) : html`<span class="muted">any</span>`}</td>
        <td><${State} state=${hook.active ? "active" : "paused"} /></td>
        <td class="hide-narrow"><${Time} at=${hook.created_at} now=${now} />
          ${hook.created_by ? html`<span class="muted small"> by ${hook.created_by}</span>` : null}</td>
        <td class="actions"><${WebhookActions} hook=${hook} small onChanged=${refresh} onDeleted=${refresh}
          onError=${onError} onPinged=${() => navigate(`/webhooks/${hook.webhook_id}`)} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export default function Webhooks() {
  const now = useNow();
  const [adding, setAdding] = useState(false);
  const [created, setCreated] = useState(null);
  const [actionError, setActionError] = useState(null);
  const { data, error, refresh } = useLive((signal) => api("/webhooks", { signal }), ["webhooks"], []);
  const hooks = data?.webhooks || [];
  return html`<div class="page-head"><h1>Webhooks</h1>
      <button type="button" class="button primary" onClick=${() => setAdding(true)}>Add webhook</button></div>
    ${adding
      ? html`<${AddWebhook} onClose=${() => setAdding(false)}
          onCreated=${(hook) => (setAdding(false), setCreated(hook), refresh())} />`
      : null}
    ${created ? html`<${NewSecret} hook=${created} onDone=${() => setCreated(null)} />` : null}
    <${ErrorNote} error=${error} what="The webhooks cannot be listed" />
    <${ErrorNote} error=${actionError} what="Refused" />
    <section class="panel">
      ${!data
        ? null
        : hooks.length
          ? html`<${Rows} hooks=${hooks} now=${now} refresh=${refresh} onError=${setActionError} />`
          : html`<${Empty} title="No webhooks yet">
              <p>Add one to tell a chat, a CI server or a pager when jobs fail or agents are lost, with
                Add webhook or <code>testfleet webhook add URL -e job.failed</code>. Each delivery is
                signed and retried for a day; every attempt shows here.</p><//>`}
    </section>`;
}
