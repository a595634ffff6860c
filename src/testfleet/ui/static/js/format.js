// Times, durations and documents as people read them.

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** "3 min ago", "in 5 s": `when` (ISO text or Date) relative to `now` (ms). */
export function ago(when, now = Date.now()) {
  const seconds = Math.round((new Date(when).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 5) return "just now";
  if (size < 60) return relative.format(seconds, "second");
  if (size < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (size < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86400), "day");
}

/** The date and time in the viewer's time zone. */
export const localTime = (when) => absolute.format(new Date(when));

/** Hours and minutes in the viewer's time zone. */
export const clockTime = (when) => clock.format(new Date(when));

/** "850 ms", "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.max(0, Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const s = Math.round(seconds);
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min ${s % 60} s`;
}

/** Seconds from `start` to `end` (or to `now` while it runs); null before it started. */
export function elapsed(start, end, now = Date.now()) {
  if (!start) return null;
  return ((end ? new Date(end).getTime() : now) - new Date(start).getTime()) / 1000;
}

const UNITS = ["bytes", "KB", "MB", "GB", "TB"];

/** "512 bytes", "1.4 KB", "23 MB", "2.1 GB" (1 KB = 1024 bytes). */
export function bytes(size) {
  if (size === null || size === undefined) return "";
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (!unit) return `${size} ${size === 1 ? "byte" : "bytes"}`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** The viewer's time zone ("Europe/Paris"). */
export const viewerZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

/** The date and time of `when` in time zone `zone` (an IANA name), or "" if unknown here. */
export function zoneTime(when, zone) {
  try {
    const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: zone });
    return format.format(new Date(when));
  } catch {
    return "";
  }
}

/** A count with its noun: "1 device", "3 devices". */
export const plural = (count, noun, many = `${noun}s`) => `${count} ${count === 1 ? noun : many}`;

const PLAIN = /^[A-Za-z_][A-Za-z0-9_ .\/-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  return PLAIN.test(text) && !RESERVED.test(text) && !text.endsWith(" ") ? text : JSON.stringify(text);
}

/** A JSON value as YAML (block style; strings quoted as JSON wherever YAML could misread them). */
export function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value
      .map((item) => {
        const inner = toYaml(item, indent + "  ");
        return `${indent}- ${isBlock(item) ? inner.trimStart() : inner}`;
      })
      .join("\n");
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    return entries
      .map(([key, item]) => {
        const name = `${indent}${scalar(key)}:`;
        return isBlock(item) ? `${name}\n${toYaml(item, indent + "  ")}` : `${name} ${toYaml(item)}`;
      })
      .join("\n");
  }
  return scalar(value);
}

const isBlock = (value) =>
  value !== null && typeof value === "object" && Object.keys(value).length > 0;
