// Paths inside the UI ("/jobs/12") and the browser's address ("/ui/jobs/12"), without reloads.
import { html, useEffect, useState } from "./html.js";

export const ROOT = "/ui";
const listeners = new Set();

/** The address of a UI path. */
export const href = (path) => ROOT + (path === "/" ? "/" : path);

/** The UI path the browser shows ("/jobs/12"). */
export const currentPath = () => location.pathname.slice(ROOT.length).replace(/\/+$/, "") || "/";

function here() {
  return { path: currentPath(), query: new URLSearchParams(location.search) };
}

/** Go to a UI path (with its query), adding to the history unless `replace`. */
export function navigate(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", href(path));
  listeners.forEach((listener) => listener());
}

window.addEventListener("popstate", () => listeners.forEach((listener) => listener()));

/** The current UI path and query; re-renders on every navigation. */
export function useLocation() {
  const [location, setLocation] = useState(here);
  useEffect(() => {
    const update = () => setLocation(here());
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return location;
}

/** The parameters of `path` matched against `pattern` ("/jobs/:id"), or null. */
export function match(pattern, path) {
  const want = pattern.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return null;
  const params = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

/** A link inside the UI: a plain click navigates without a reload. */
export function Link({ to, children, ...rest }) {
  const onClick = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(to);
  };
  return html`<a href=${href(to)} onClick=${onClick} ...${rest}>${children}</a>`;
}
