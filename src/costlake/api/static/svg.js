// Small helpers for charts drawn as SVG: elements made with createElementNS, text set with textContent
// only (a name from a billing file is never parsed as markup).

const NS = "http://www.w3.org/2000/svg";
export const W = 800;
export const H = 290;
export const M = { left: 64, right: 26, top: 20, bottom: 40 };
export const DIRECTION_COLOUR = { up: "#c0392b", down: "#2471a3", shift: "#7d3c98" };

export function el(name, attributes = {}, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [attribute, value] of Object.entries(attributes)) node.setAttribute(attribute, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

export function money(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return "";
  return number.toLocaleString("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
}

// An axis label: short ("$1.5K"), so it stays legible when the chart is drawn small.
function axisMoney(value) {
  return value.toLocaleString("en-US", { style: "currency", currency: "USD", notation: "compact" });
}

// A new chart: the <svg> with its accessible name and a <title>, and (one chart only: ids are unique)
// the hatch for days not yet complete.
export function canvas(label, hatch = false) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  svg.append(el("title", {}, label));
  if (!hatch) return svg;
  const pattern = el("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)" });
  pattern.append(el("rect", { width: 6, height: 6, fill: "#ffffff", "fill-opacity": 0.35 }));
  pattern.append(el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#333", "stroke-width": 2 }));
  const defs = el("defs");
  defs.append(pattern);
  svg.append(defs);
  return svg;
}

// x of day i of n (centre of its slot) and y of a value on a scale from 0 to top.
export function scales(n, top) {
  const width = W - M.left - M.right;
  const height = H - M.top - M.bottom;
  const step = width / Math.max(1, n);
  return {
    step,
    x: (i) => M.left + step * (i + 0.5),
    y: (value) => M.top + height - (height * value) / (top || 1),
  };
}

// Axes: four ticks of money on the left, a few day labels below.
export function axes(svg, days, top, scale) {
  const group = el("g", { class: "axis" });
  for (let t = 0; t <= 4; t += 1) {
    const value = (top * t) / 4;
    const y = scale.y(value);
    group.append(el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }));
    group.append(el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end" }, axisMoney(value)));
  }
  const every = Math.max(1, Math.ceil(days.length / 7));
  days.forEach((day, i) => {
    if (i % every === 0) {
      group.append(el("text", { x: scale.x(i), y: H - M.bottom + 18, "text-anchor": "middle" }, day.slice(5)));
    }
  });
  svg.append(group);
}

// A marker for an anomaly: a triangle up or down (a diamond for a shift), its text in a <title>.
export function marker(x, y, direction, text) {
  const colour = DIRECTION_COLOUR[direction] || DIRECTION_COLOUR.shift;
  const shape = direction === "up" ? `M${x},${y - 7} l6,10 h-12 z`
    : direction === "down" ? `M${x},${y + 3} l6,-10 h-12 z`
      : `M${x},${y - 7} l6,6 l-6,6 l-6,-6 z`;
  const path = el("path", { d: shape, fill: colour, class: `marker marker-${direction}` });
  path.append(el("title", {}, text));
  return path;
}

// A niceish top for a scale: the maximum rounded up to 1, 2 or 5 times a power of ten.
export function niceTop(maximum) {
  if (!(maximum > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(maximum));
  for (const step of [1, 2, 5, 10]) if (step * power >= maximum) return step * power;
  return 10 * power;
}
