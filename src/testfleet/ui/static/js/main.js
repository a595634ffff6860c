// The UI starts here: who is signed in, then the page the address names.
import { html, render, useEffect, useState } from "./html.js";
import { api, onSignedOut, prefetch } from "./api.js";
import { currentPath, match, navigate, useLocation } from "./router.js";
import { allowed, pages } from "./pages.js";
import { Layout } from "./layout.js";
import { Session, Empty } from "./components.js";
import { SignIn } from "./signin.js";

function resolve(path) {
  for (const page of pages) {
    const params = match(page.path, path);
    if (params) return { page, params };
  }
  return { page: null, params: {} };
}

const loaded = new Map();
const graph = JSON.parse(document.getElementById("module-graph")?.textContent || "{}");

/** Fetch a module and everything it imports at once (not import after import). */
function preload(name, seen = new Set()) {
  if (seen.has(name)) return;
  seen.add(name);
  const link = document.createElement("link");
  link.rel = "modulepreload";
  link.href = new URL(`../${name}`, import.meta.url).href;
  document.head.append(link);
  (graph[name] || []).forEach((needed) => preload(needed, seen));
}

/** A page's module, loaded once. */
function load(page) {
  preload(`js/${page.module}`);
  return import(`./${page.module}`);
}

function usePageModule(page) {
  const [module, setModule] = useState(() => loaded.get(page));
  useEffect(() => {
    if (!page || loaded.has(page)) {
      setModule(loaded.get(page));
      return;
    }
    let current = true;
    load(page).then((found) => {
      loaded.set(page, found);
      if (current) setModule(found);
    });
    return () => (current = false);
  }, [page]);
  return module;
}

function Page({ me, location }) {
  const { page, params } = resolve(location.path);
  const module = usePageModule(page);
  useEffect(() => {
    document.title = page ? `${page.title} · testfleet` : "Not found · testfleet";
  }, [page]);
  if (!page) {
    return html`<${Empty} title="There is no such page">
      <p><a href="/ui/" onClick=${(e) => (e.preventDefault(), navigate("/"))}>Go to the overview</a></p>
    <//>`;
  }
  if (!allowed(page, me)) {
    return html`<${Empty} title=${`${page.title} is for ${page.roles.join(" or ")} users`}>
      <p>You are signed in as ${me.name} (${me.role}).</p>
    <//>`;
  }
  if (!module) return html`<p class="muted loading">Loading…</p>`;
  const View = module.default;
  return html`<${View} params=${params} query=${location.query} me=${me} />`;
}

// Who is asking and the page's module, both on their way before the first render.
const firstMe = api("/auth/me");
firstMe.catch(() => null);
const first = resolve(currentPath());
if (first.page) {
  const path = first.page.data?.(first.params, new URLSearchParams(location.search));
  if (path) prefetch(path);
  load(first.page).then((found) => loaded.set(first.page, found));
}

function App() {
  const [me, setMe] = useState(undefined);
  const [problem, setProblem] = useState(null);
  const location = useLocation();
  const loadMe = (first) =>
    (first || api("/auth/me")).then(
      (found) => (setMe(found), setProblem(null)),
      (error) => (error.status === 401 ? setMe(null) : setProblem(error)),
    );
  useEffect(() => {
    loadMe(firstMe);
    return onSignedOut(() => setMe(null));
  }, []);
  if (problem) {
    return html`<${Empty} title="The hub cannot be reached"><p>${problem.message}</p>
      <button class="button" onClick=${() => loadMe()}>Try again</button><//>`;
  }
  if (me === undefined) return html`<p class="booting">Loading testfleet…</p>`;
  if (me === null) return html`<${SignIn} onSignedIn=${setMe} />`;
  const { page } = resolve(location.path);
  return html`<${Session.Provider} value=${me}>
    <${Layout} me=${me} current=${page} onSignOut=${() => setMe(null)}>
      <${Page} me=${me} location=${location} />
    <//>
  <//>`;
}

render(html`<${App} />`, document.getElementById("app"));
