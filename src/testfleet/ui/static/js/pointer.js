// Where a JSON pointer ("/tests/0/steps/1/params") is in the YAML or JSON text a user typed,
// so that the hub's validation errors can be shown at their line. Block YAML and JSON laid
// out one key per line are found exactly; otherwise the nearest enclosing line is given.

const unescape = (part) => part.replace(/~1/g, "/").replace(/~0/g, "~");
const indentOf = (line) => line.match(/^[\s-]*/)[0].length;
const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function keyLine(lines, from, to, key) {
  const pattern = new RegExp(`^[\\s-]*(["']?)${escapeRe(key)}\\1\\s*:`);
  let best = -1;
  for (let i = from; i < to; i++) {
    if (pattern.test(lines[i]) && (best < 0 || indentOf(lines[i]) < indentOf(lines[best]))) best = i;
  }
  return best;
}

function itemLine(lines, from, to, index) {
  // Block sequences: the n-th "- " at the shallowest dash indentation in the range.
  const dashes = [];
  for (let i = from; i < to; i++) {
    const found = lines[i].match(/^(\s*)- /);
    if (found) dashes.push([i, found[1].length]);
  }
  if (dashes.length) {
    const depth = Math.min(...dashes.map(([, d]) => d));
    const items = dashes.filter(([, d]) => d === depth).map(([i]) => i);
    return index < items.length ? items[index] : -1;
  }
  // JSON arrays of objects, one "{" per item line.
  const opens = [];
  for (let i = from; i < to; i++) if (/^\s*\{/.test(lines[i])) opens.push(i);
  return index < opens.length ? opens[index] : -1;
}

const spaces = (line) => line.match(/^\s*/)[0].length;
const isItem = (line) => /^\s*- /.test(line);

function blockEnd(lines, start) {
  // A key's block goes on while lines are deeper (or are "- " items at the key's depth).
  const own = spaces(lines[start]);
  const key = !isItem(lines[start]);
  for (let i = start + 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    const depth = spaces(lines[i]);
    if (depth < own || (depth === own && !(key && isItem(lines[i])))) return i;
  }
  return lines.length;
}

/** The 1-based line of `pointer` in `text` (or of its nearest found parent; 1 if none). */
export function lineOf(text, pointer) {
  const lines = text.split("\n");
  let from = 0;
  let to = lines.length;
  let found = 0;
  for (const raw of pointer.split("/").slice(1)) {
    const part = unescape(raw);
    let line = /^\d+$/.test(part) ? itemLine(lines, from, to, Number(part)) : -1;
    if (line < 0) line = keyLine(lines, from, to, part);
    if (line < 0) break;
    found = line;
    from = /^\d+$/.test(part) ? line : line + 1; // an item's first key shares its dash line
    to = blockEnd(lines, line);
  }
  return found + 1;
}
