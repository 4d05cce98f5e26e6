// The two charts: the daily cost stacked by service or account with anomaly markers (days not yet
// complete hatched), and one series' actual cost inside its expected band (GET /series).

import { axes, canvas, el, M, marker, money, niceTop, scales } from "./svg.js";

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac"];
const MOST_GROUPS = 8; // the rest are summed as "other"

function swatch(...fills) {
  const svg = el("svg", { viewBox: "0 0 12 12", width: 12, height: 12, "aria-hidden": "true" });
  for (const fill of fills) svg.append(el("rect", { width: 12, height: 12, fill }));
  return svg;
}

function legendItem(list, fills, text) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = text;
  item.append(swatch(...fills), label);
  list.append(item);
}

// rows: GET /costs/daily rows; key(row) the group; label(key) its name; anomalies: rows of GET /anomalies.
export function drawTrend(box, legend, rows, key, label, anomalies) {
  const days = [...new Set(rows.map((r) => r.usage_date))].sort();
  const totals = new Map();
  for (const r of rows) totals.set(key(r), (totals.get(key(r)) || 0) + Number(r.cost_usd));
  const ranked = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const shown = ranked.slice(0, MOST_GROUPS);
  const groupOf = (r) => (shown.includes(key(r)) ? key(r) : "\u0000other");
  const groups = ranked.length > MOST_GROUPS ? [...shown, "\u0000other"] : shown;
  const cells = new Map(); // day -> group -> cost
  const incomplete = new Set(rows.filter((r) => !r.data_complete).map((r) => r.usage_date));
  for (const r of rows) {
    const day = cells.get(r.usage_date) || new Map();
    day.set(groupOf(r), (day.get(groupOf(r)) || 0) + Number(r.cost_usd));
    cells.set(r.usage_date, day);
  }
  const stackTop = (d) => [...(cells.get(d) || new Map()).values()].reduce((a, b) => a + b, 0);
  const top = niceTop(Math.max(0, ...days.map(stackTop)));
  const name = (g) => (g === "\u0000other" ? "other" : label(g));
  const summary = days.length
    ? `Daily cost from ${days[0]} to ${days[days.length - 1]}, ${groups.length} stacked series, `
      + `${anomalies.length} anomalies marked, ${incomplete.size} days not yet complete`
    : "No cost in this view";
  const svg = canvas(summary, true);
  const scale = scales(days.length, top);
  axes(svg, days, top, scale);
  const width = Math.max(1, scale.step * 0.8);
  days.forEach((day, i) => {
    let base = 0;
    const bar = el("g", { class: incomplete.has(day) ? "day incomplete" : "day" });
    groups.forEach((g, n) => {
      const value = cells.get(day).get(g) || 0;
      if (!value) return;
      const y = scale.y(base + value);
      const rect = el("rect", { x: scale.x(i) - width / 2, y, width, height: scale.y(base) - y,
        fill: PALETTE[n % PALETTE.length] });
      rect.append(el("title", {}, `${day} · ${name(g)}: ${money(value)}`));
      bar.append(rect);
      base += value;
    });
    if (incomplete.has(day)) {
      bar.append(el("rect", { x: scale.x(i) - width / 2, y: scale.y(base), width,
        height: scale.y(0) - scale.y(base), fill: "url(#hatch)", class: "hatch" }));
    }
    svg.append(bar);
  });
  const index = new Map(days.map((d, i) => [d, i]));
  for (const a of anomalies) {
    if (!index.has(a.usage_date)) continue;
    const i = index.get(a.usage_date);
    svg.append(marker(scale.x(i), scale.y(stackTop(a.usage_date)) - 6, a.direction,
      `${a.usage_date} · ${a.account_id} · ${a.service_name}: ${a.kind}, impact ${money(a.impact_usd)}`));
  }
  box.replaceChildren(svg);
  legend.replaceChildren();
  groups.forEach((g, n) => legendItem(legend, [PALETTE[n % PALETTE.length]], name(g)));
  legendItem(legend, ["#bbbbbb", "url(#hatch)"], "day not yet complete");
  legendItem(legend, ["#c0392b"], "anomaly: cost up");
  legendItem(legend, ["#2471a3"], "anomaly: cost down");
}

function polyline(points, attributes) {
  return el("polyline", { points: points.map(([x, y]) => `${x},${y}`).join(" "), fill: "none", ...attributes });
}

// One series from GET /series: the band (low to high) shaded, expected dashed, actual solid, anomalies.
export function drawSeries(box, found) {
  const days = found.days.map((d) => d.usage_date);
  const maximum = Math.max(0, ...found.days.flatMap((d) => [Number(d.actual_usd), Number(d.expected_high_usd || 0)]));
  const top = niceTop(maximum);
  const summary = `${found.title}: ${days.length} days from ${days[0]} to ${days[days.length - 1]}, `
    + `${found.anomalies.length} anomalies`;
  const svg = canvas(summary);
  const scale = scales(days.length, top);
  axes(svg, days, top, scale);
  const known = found.days.map((d, i) => [d, i]).filter(([d]) => d.expected_low_usd !== null);
  if (known.length) {
    const upper = known.map(([d, i]) => [scale.x(i), scale.y(Number(d.expected_high_usd))]);
    const lower = known.map(([d, i]) => [scale.x(i), scale.y(Number(d.expected_low_usd))]).reverse();
    svg.append(el("polygon", { points: [...upper, ...lower].map(([x, y]) => `${x},${y}`).join(" "),
      class: "band", fill: "#aed6f1", "fill-opacity": 0.6 }));
    svg.append(polyline(known.map(([d, i]) => [scale.x(i), scale.y(Number(d.expected_usd))]),
      { class: "expected", stroke: "#2e86c1", "stroke-dasharray": "5 4", "stroke-width": 1.5 }));
  }
  svg.append(polyline(found.days.map((d, i) => [scale.x(i), scale.y(Number(d.actual_usd))]),
    { class: "actual", stroke: "#1c2833", "stroke-width": 2 }));
  const index = new Map(days.map((d, i) => [d, i]));
  for (const a of found.anomalies) {
    if (!index.has(a.usage_date)) continue;
    const i = index.get(a.usage_date);
    svg.append(marker(scale.x(i), scale.y(Number(a.actual_usd)) - 6, a.direction,
      `${a.usage_date} · ${a.service_name}: ${a.kind}, actual ${money(a.actual_usd)} vs expected ${money(a.expected_usd)}`));
  }
  const key = el("g", { class: "key" });
  key.append(el("rect", { x: M.left + 8, y: 4, width: 14, height: 10, fill: "#aed6f1" }));
  key.append(el("text", { x: M.left + 26, y: 13 }, "expected band"));
  key.append(el("line", { x1: M.left + 250, x2: M.left + 270, y1: 9, y2: 9, stroke: "#1c2833", "stroke-width": 2 }));
  key.append(el("text", { x: M.left + 274, y: 13 }, "actual"));
  svg.append(key);
  box.replaceChildren(svg);
}
