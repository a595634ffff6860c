// Webhooks: the form that registers one, and the actions on one (ping, pause or resume,
// delete), shared by the list and a webhook's own page.
import { html, useState } from "./html.js";
import { api } from "./api.js";
import { Confirm, Dialog } from "./components.js";

export const EVENTS = {
  "job.finished": "a job finished (any outcome)",
  "job.failed": "a job failed",
  "device.offline": "a device went offline",
  "agent.lost": "an agent was lost",
};

const list = (text) => text.split(",").map((item) => item.trim()).filter(Boolean);

/** The problem the hub found at `location` (or under it), if any. */
const at = (error, location) =>
  error?.errors.find((e) => e.location === location || e.location.startsWith(`${location}/`));

/** Register a webhook; `onCreated` gets the answer, which carries the secret (only there). */
export function AddWebhook({ onCreated, onClose }) {
  const [form, setForm] = useState({ url: "", events: ["job.failed"], tags: "", description: "", secret: "" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  const toggle = (name) => (event) =>
    setForm({
      ...form,
      events: event.target.checked ? [...form.events, name] : form.events.filter((e) => e !== name),
    });
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = { url: form.url.trim(), events: form.events, tags: list(form.tags), description: form.description };
    if (form.secret) body.secret = form.secret;
    try {
      onCreated(await api("/webhooks", { method: "POST", body }));
    } catch (problem) {
      setError(problem);
      setBusy(false);
    }
  };
  const problem = (location) => {
    const found = at(error, location);
    return found ? html`<p class="field-error" role="alert">${found.message}</p>` : null;
  };
  const known = ["/url", "/events", "/tags", "/description", "/secret"];
  const other = error && !known.some((location) => at(error, location));
  return html`<${Dialog} title="Add a webhook" onClose=${onClose}>
    <form onSubmit=${submit}>
      <div class="dialog-body">
        <div class="field"><label for="wh-url">URL</label>
          <input id="wh-url" type="url" required value=${form.url} onInput=${set("url")}
            placeholder="for example https://ci.example.com/hooks/testfleet" />${problem("/url")}</div>
        <fieldset class="checks"><legend>Events</legend>
          ${Object.entries(EVENTS).map(
            ([name, words]) => html`<label title=${words}><input type="checkbox" checked=${form.events.includes(name)}
              onChange=${toggle(name)} /> ${name}</label>`,
          )}
        </fieldset>${problem("/events")}
        <div class="field"><label for="wh-tags">Only jobs tagged</label>
          <input id="wh-tags" value=${form.tags} onInput=${set("tags")} placeholder="nightly, release (empty: every job)" />
          ${problem("/tags")}</div>
        <div class="field"><label for="wh-description">Description</label>
          <input id="wh-description" value=${form.description} onInput=${set("description")} placeholder="what it is for" />
          ${problem("/description")}</div>
        <div class="field"><label for="wh-secret">Secret</label>
          <input id="wh-secret" value=${form.secret} onInput=${set("secret")} autocomplete="off"
            placeholder="empty: the hub makes one (shown once)" />
          <span class="hint">Signs each delivery: X-Testfleet-Signature-256 is the HMAC-SHA256 of
            "TIMESTAMP.BODY" with it. At least 16 characters.</span>${problem("/secret")}</div>
        ${other ? html`<p class="field-error" role="alert">${error.message}</p>` : null}
      </div>
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button primary" disabled=${busy || !form.events.length}>Add webhook</button>
      </footer>
    </form>
  <//>`;
}

/** Ping, Pause/Resume and Delete for one webhook; `onPinged` (else `onChanged`) after a ping. */
export function WebhookActions({ hook, onChanged, onPinged, onDeleted, onError, small }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const act = async (path, options) => {
    setBusy(true);
    try {
      await api(`/webhooks/${hook.webhook_id}${path}`, options);
      (path === "/ping" && onPinged ? onPinged : onChanged)?.();
    } catch (problem) {
      onError?.(problem);
    } finally {
      setBusy(false);
    }
  };
  const size = small ? "button small" : "button";
  return html`<button type="button" class=${size} disabled=${busy}
      onClick=${() => act("/ping", { method: "POST" })} aria-label=${`Ping webhook ${hook.webhook_id}`}>Ping</button>
    <button type="button" class=${size} disabled=${busy}
      onClick=${() => act("", { method: "PATCH", body: { active: !hook.active } })}
      aria-label=${`${hook.active ? "Pause" : "Resume"} webhook ${hook.webhook_id}`}>${hook.active ? "Pause" : "Resume"}</button>
    <button type="button" class=${`${size} danger`} onClick=${() => setAsking(true)}
      aria-label=${`Delete webhook ${hook.webhook_id}`}>Delete</button>
    ${asking
      ? html`<${Confirm} title="Delete this webhook?" action="Delete webhook" onClose=${() => setAsking(false)}
          onConfirm=${async () => (await api(`/webhooks/${hook.webhook_id}`, { method: "DELETE" }), onDeleted?.())}>
          <p style="margin:0">Nothing more is sent to <b>${hook.url}</b>, and its deliveries are forgotten.</p>
        <//>`
      : null}`;
}
