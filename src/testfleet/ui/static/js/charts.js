// Two small SVG charts for the overview: stacked bars of outcomes, and a line of durations.
import { html } from "./html.js";
import { clockTime, duration } from "./format.js";

const W = 600;
const H = 160;
const PAD = { left: 40, right: 8, top: 8, bottom: 22 };

function ticks(points) {
  const every = Math.max(1, Math.ceil(points.length / 6));
  return points.map((p, i) => (i % every === 0 ? i : null)).filter((i) => i !== null);
}

function Frame({ label, top, format, points, children }) {
  const inner = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(1, points.length);
  return html`<svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label}>
    <line class="axis" x1=${PAD.left} x2=${W - PAD.right} y1=${PAD.top + inner} y2=${PAD.top + inner} />
    <line class="axis" x1=${PAD.left} x2=${W - PAD.right} y1=${PAD.top} y2=${PAD.top} stroke-dasharray="2 3" />
    <text x=${PAD.left - 6} y=${PAD.top + 4} text-anchor="end">${format(top)}</text>
    <text x=${PAD.left - 6} y=${PAD.top + inner} text-anchor="end">0</text>
    ${ticks(points).map(
      (i) => html`<text x=${PAD.left + step * i + step / 2} y=${H - 6} text-anchor="middle">${clockTime(points[i].start)}</text>`,
    )}
    ${children(step, inner)}
  </svg>`;
}

/** Jobs finished per bucket, stacked by outcome. */
export function OutcomeBars({ points }) {
  const keys = ["completed", "failed", "cancelled"];
  const top = Math.max(1, ...points.map((p) => keys.reduce((sum, k) => sum + p[k], 0)));
  return html`<${Frame} label="Jobs finished per hour, by outcome" top=${top} format=${String} points=${points}>
    ${(step, inner) =>
      points.map((p, i) => {
        let y = PAD.top + inner;
        const total = keys.reduce((sum, k) => sum + p[k], 0);
        return html`<g>
          <title>${clockTime(p.start)}: ${total} finished (${keys.map((k) => `${p[k]} ${k}`).join(", ")})</title>
          <rect x=${PAD.left + step * i} y=${PAD.top} width=${step} height=${inner} fill="transparent" />
          ${keys.map((k) => {
            const h = (p[k] / top) * inner;
            y -= h;
            return h > 0
              ? html`<rect class=${`fill-${k}`} x=${PAD.left + step * i + 1} y=${y} width=${Math.max(1, step - 2)} height=${h} rx="1" />`
              : null;
          })}
        </g>`;
      })}
  <//>`;
}

/** Mean run time per bucket (a line through the buckets that had finished jobs). */
export function DurationLine({ points }) {
  const top = Math.max(0.01, ...points.map((p) => p.mean_seconds || 0)) * 1.15;
  return html`<${Frame} label="Mean job run time per hour" top=${top} format=${duration} points=${points}>
    ${(step, inner) => {
      const at = (i, v) => [PAD.left + step * i + step / 2, PAD.top + inner - (v / top) * inner];
      const known = points.map((p, i) => [i, p]).filter(([, p]) => p.mean_seconds !== null);
      const path = known.map(([i, p], n) => `${n ? "L" : "M"}${at(i, p.mean_seconds).join(",")}`).join(" ");
      return html`<path d=${path} fill="none" stroke="var(--accent)" stroke-width="2" />
        ${known.map(([i, p]) => {
          const [x, y] = at(i, p.mean_seconds);
          return html`<circle class="fill-duration" cx=${x} cy=${y} r="3">
            <title>${clockTime(p.start)}: mean ${duration(p.mean_seconds)}, longest ${duration(p.max_seconds)}</title>
          </circle>`;
        })}`;
    }}
  <//>`;
}

/** A thin bar split by shares: [{key, value}] coloured by `fill-<key>`. */
export function Meter({ parts, label }) {
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  return html`<div class="meter" role="img" aria-label=${label}>
    ${total
      ? parts.map((p) => html`<span class=${`fill-${p.key}`} style=${`width:${(100 * p.value) / total}%`} title=${`${p.value} ${p.key}`}></span>`)
      : null}
  </div>`;
}
