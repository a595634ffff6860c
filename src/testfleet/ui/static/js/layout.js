// The frame around every page: the name, the navigation, the live state, who is signed in.
import { html, useEffect, useState } from "./html.js";
import { Link } from "./router.js";
import { allowed, pages } from "./pages.js";
import { live } from "./live.js";
import { api } from "./api.js";

function LiveState() {
  const [state, setState] = useState(live.state);
  useEffect(() => live.onState(setState), []);
  const text = state === "live" ? "Live" : "Reconnecting…";
  return html`<span class=${`live live-${state}`} title="Updates arrive without reloading">
    <span class="dot" aria-hidden="true"></span>${text}
  </span>`;
}

function User({ me, onSignOut }) {
  const signOut = async () => {
    await api("/auth/session", { method: "DELETE" }).catch(() => null);
    onSignOut();
  };
  return html`<div class="user">
    <span class="user-name" data-testid="user-name">${me.name}</span>
    <span class="role">${me.role}</span>
    ${me.auth_enabled
      ? me.via === "cookie"
        ? html`<button type="button" class="button ghost small" onClick=${signOut}>Sign out</button>`
        : null
      : html`<span class="muted small" title="The hub runs without auth">auth off</span>`}
  </div>`;
}

/** The page frame; `current` is the registry entry shown, if any. */
export function Layout({ me, current, onSignOut, children }) {
  const nav = pages.filter((page) => page.nav && allowed(page, me));
  // A page without its own entry (a job) lights up the entry its path starts with (Jobs).
  const lit =
    current?.nav ? current : nav.find((page) => page.path !== "/" && current?.path.startsWith(`${page.path}/`));
  return html`<a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <${Link} to="/" class="brand"><span class="logo" aria-hidden="true"></span>testfleet<//>
      <nav aria-label="Main">
        ${nav.map(
          (page) =>
            html`<${Link} to=${page.path} aria-current=${page === lit ? "page" : undefined}>${page.nav}<//>`,
        )}
        <a href="/docs" class="external">API</a>
      </nav>
      <div class="top-right"><${LiveState} /><${User} me=${me} onSignOut=${onSignOut} /></div>
    </header>
    <main id="main" tabindex="-1">${children}</main>`;
}
