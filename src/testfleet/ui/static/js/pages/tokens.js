// Tokens (admins): create one (its secret is shown once) and revoke.
import { html, useState } from "../html.js";
import { api } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";

const ROLES = ["viewer", "operator", "admin", "agent"];

function Create({ onCreated }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState("viewer");
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      onCreated(await api("/tokens", { method: "POST", body: { name, role } }));
      setName("");
    } catch (problem) {
      setError(problem);
    }
  };
  const nameError = error?.errors.find((e) => e.location === "/name");
  return html`<form class="filters" onSubmit=${submit} aria-label="Create a token">
    <div class="field"><label for="t-name">Name</label>
      <input id="t-name" required value=${name} onInput=${(e) => setName(e.target.value)} placeholder="alice"
        aria-invalid=${nameError ? "true" : undefined} /></div>
    <div class="field"><label for="t-role">Role</label>
      <select id="t-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}
      </select></div>
    <button class="button primary" type="submit">Create token</button>
    ${error ? html`<p class="field-error" role="alert">${nameError ? `Name: ${nameError.message}` : error.message}</p>` : null}
  </form>`;
}

export default function Tokens() {
  const now = useNow();
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const { data, error: listError, refresh } = useLive((signal) => api("/tokens", { signal }), [], []);
  const revoke = async (token) => {
    if (!confirm(`Revoke token ${token.name} (${token.role})? Whoever uses it is refused at once.`)) return;
    try {
      await api(`/tokens/${token.token_id}`, { method: "DELETE" });
      refresh();
    } catch (problem) {
      setError(problem);
    }
  };
  const tokens = data?.tokens || [];
  return html`<div class="page-head"><h1>Tokens</h1></div>
    <section class="panel"><h2>New token</h2>
      <${Create} onCreated=${(token) => (setCreated(token), refresh())} />
      ${created
        ? html`<div class="note note-info" role="status" data-testid="new-token">
            <p>Token <b>${created.name}</b> (${created.role}). Copy it now: it is shown only this once.</p>
            <div class="secret" data-testid="secret">${created.token}</div>
            <p><button type="button" class="button small" onClick=${() => navigator.clipboard?.writeText(created.token)}>Copy</button>
              <button type="button" class="button ghost small" onClick=${() => setCreated(null)}>Done</button></p>
          </div>`
        : null}
    </section>
    <${ErrorNote} error=${error || listError} what="Refused" />
    <section class="panel"><h2>All tokens</h2>
      ${!data
        ? null
        : !tokens.length
          ? html`<${Empty} title="No tokens"><p>Create one above.</p><//>`
          : html`<div class="table-wrap"><table data-testid="tokens-table">
              <thead><tr><th>Name</th><th>Role</th><th>Created</th><th class="hide-narrow">By</th><th>State</th><th></th></tr></thead>
              <tbody>${tokens.map(
                (t) => html`<tr data-token=${t.name}>
                  <td><strong>${t.name}</strong></td><td>${t.role}</td>
                  <td><${Time} at=${t.created_at} now=${now} /></td>
                  <td class="hide-narrow">${t.created_by || "—"}</td>
                  <td>${t.revoked_at
                    ? html`<${State} state="cancelled" label="revoked" /> <${Time} at=${t.revoked_at} now=${now} />`
                    : html`<${State} state="completed" label="active" />`}</td>
                  <td class="actions">${t.revoked_at
                    ? null
                    : html`<button type="button" class="button small danger" onClick=${() => revoke(t)}>Revoke</button>`}</td>
                </tr>`,
              )}</tbody>
            </table></div>`}
    </section>`;
}
