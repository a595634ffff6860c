// Signing in with a token: the hub checks it and keeps it in an HttpOnly cookie.
import { html, useState } from "./html.js";
import { api } from "./api.js";

export function SignIn({ onSignedIn }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api("/auth/session", { method: "POST", body: { token } }));
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="card signin-card" onSubmit=${submit}>
      <h1><span class="logo" aria-hidden="true"></span>testfleet</h1>
      <p class="muted">This hub asks for a token. An admin makes one with
        <code>testfleet token create --name NAME --role viewer</code>.</p>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="current-password"
        required autofocus value=${token} onInput=${(e) => setToken(e.target.value)} />
      ${error ? html`<p class="field-error" role="alert">${error.message}</p>` : null}
      <button class="button primary" type="submit" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}
