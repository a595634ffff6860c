// A row of filters whose values live in the page's address: selects apply at once, text
// fields after a short pause in typing. `fields`: [{key, label, options?: [[value, text]],
// placeholder?}]; `values`: {key: value}; `apply(values)` shows the filtered page.
import { html, useEffect, useState } from "./html.js";

export function FilterBar({ id, fields, values, apply, label }) {
  const [draft, setDraft] = useState(values);
  const current = JSON.stringify(values);
  useEffect(() => setDraft(values), [current]);
  useEffect(() => {
    if (JSON.stringify(draft) === current) return;
    const timer = setTimeout(() => apply(draft), 350);
    return () => clearTimeout(timer);
  }, [JSON.stringify(draft)]);
  const set = (key, now) => (event) => {
    const next = { ...draft, [key]: event.target.value };
    setDraft(next);
    if (now) apply(next);
  };
  const any = fields.some((f) => values[f.key]);
  return html`<form class="filters" role="search" aria-label=${label}
      onSubmit=${(e) => (e.preventDefault(), apply(draft))}>
    ${fields.map((f) => {
      const fid = `${id}-${f.key}`;
      return html`<div class="field"><label for=${fid}>${f.label}</label>
        ${f.options
          ? html`<select id=${fid} value=${draft[f.key] || ""} onChange=${set(f.key, true)}>
              ${f.options.map(([value, text]) => html`<option value=${value}>${text}</option>`)}</select>`
          : html`<input id=${fid} type="search" value=${draft[f.key] || ""} placeholder=${f.placeholder || ""}
              onInput=${set(f.key, false)} />`}</div>`;
    })}
    ${any
      ? html`<button type="button" class="button ghost" onClick=${() => apply(Object.fromEntries(fields.map((f) => [f.key, ""])))}>Clear filters</button>`
      : null}
  </form>`;
}

/** The values of `keys` in the address's query (missing ones as ""). */
export const valuesOf = (search, keys) => Object.fromEntries(keys.map((key) => [key, search.get(key) || ""]));
