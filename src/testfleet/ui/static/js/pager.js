// Paging by cursor (the API's `next_cursor`) with the cursor in the page's address: "Next"
// goes on, "Previous" comes back the way it came, "First" starts again. Used by the lists
// whose API pages (devices, agents, sessions).
import { html } from "./html.js";

const trails = new Map(); // a list's name -> the cursors of the pages before this one

/**
 * The buttons under a paged list: `cursor` is this page's ("" for the first), `next` the
 * API's next_cursor, `go(cursor)` shows another page; `what` names the list for screen readers.
 */
export function Pager({ name, cursor, next, go, what }) {
  const trail = trails.get(name) || [];
  trails.set(name, trail);
  if (!cursor) trail.length = 0;
  if (!cursor && !next) return null;
  const forward = () => (trail.push(cursor), go(next));
  const back = () => go(trail.pop() || "");
  return html`<nav class="pager" aria-label=${`Pages of ${what}`}>
    ${cursor ? html`<button type="button" class="button" onClick=${back}>← Previous</button>` : null}
    ${cursor ? html`<button type="button" class="button ghost" onClick=${() => ((trail.length = 0), go(""))}>First page</button>` : null}
    ${next ? html`<button type="button" class="button" onClick=${forward}>Next →</button>` : null}
  </nav>`;
}
