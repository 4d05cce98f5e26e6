// The anomaly table: sortable by its header buttons (aria-sort), each row focusable and activated by
// a click, Enter or Space. Every cell is set with textContent.

import { money } from "./svg.js";

const COLUMNS = [
  { id: "date", label: "Date", sort: (a) => a.usage_date },
  { id: "account", label: "Account", sort: (a, name) => name(a.account_id) },
  { id: "service", label: "Service", sort: (a) => a.service_name },
  { id: "kind", label: "Kind", sort: (a) => a.kind },
  { id: "actual", label: "Actual vs expected", sort: (a) => Number(a.actual_usd), numeric: true },
  { id: "impact", label: "Impact", sort: (a) => Number(a.impact_usd), numeric: true },
  { id: "causes", label: "Top causes" },
];

export const rowKey = (accountId, service, day) => JSON.stringify([accountId, service, day]);

function cell(row, text, kind = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (kind) td.className = kind;
  row.append(td);
  return td;
}

// The largest contribution of each dimension, as "dimension: value (+$n)" lines.
function causes(anomaly) {
  const seen = new Map();
  for (const c of anomaly.contributors || []) {
    const best = seen.get(c.dimension);
    if (!best || Math.abs(Number(c.contribution_usd)) > Math.abs(Number(best.contribution_usd))) {
      seen.set(c.dimension, c);
    }
  }
  return [...seen.values()].map((c) => `${c.dimension}: ${c.value} (${Number(c.contribution_usd) >= 0 ? "+" : ""}${money(c.contribution_usd)})`);
}

export class AnomalyTable {
  constructor(head, body, onPick) {
    this.head = head;
    this.body = body;
    this.onPick = onPick;
    this.rows = [];
    this.name = (id) => id;
    this.order = { id: "date", descending: true };
    this.picked = null; // the key of the chosen row, kept across sorting and filtering
  }

  show(rows, name) {
    this.rows = rows;
    this.name = name;
    this.render();
  }

  sortBy(id) {
    const descending = this.order.id === id ? !this.order.descending : id !== "account" && id !== "service";
    this.order = { id, descending };
    this.render();
  }

  sorted() {
    const column = COLUMNS.find((c) => c.id === this.order.id);
    const value = (a) => column.sort(a, this.name);
    const sign = this.order.descending ? -1 : 1;
    return [...this.rows].sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      return sign * (x < y ? -1 : x > y ? 1 : 0);
    });
  }

  renderHead() {
    const cells = COLUMNS.map((column) => {
      const th = document.createElement("th");
      th.scope = "col";
      if (!column.sort) {
        th.textContent = column.label;
        return th;
      }
      const active = this.order.id === column.id;
      th.setAttribute("aria-sort", active ? (this.order.descending ? "descending" : "ascending") : "none");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = column.label + (active ? (this.order.descending ? " ▼" : " ▲") : "");
      button.addEventListener("click", () => this.sortBy(column.id));
      th.append(button);
      return th;
    });
    this.head.replaceChildren(...cells);
  }

  render() {
    this.renderHead();
    const rows = this.sorted().map((a) => {
      const tr = document.createElement("tr");
      tr.tabIndex = 0;
      tr.dataset.key = rowKey(a.account_id, a.service_name, a.usage_date);
      tr.dataset.chunk = a.chunk_id;
      tr.className = `dir-${a.direction}`;
      if (tr.dataset.key === this.picked) tr.classList.add("picked");
      cell(tr, a.usage_date, "nowrap");
      const named = this.name(a.account_id);
      cell(tr, named === a.account_id ? a.account_id : `${named} (${a.account_id})`);
      cell(tr, a.service_name);
      cell(tr, a.kind.replaceAll("_", " "), "nowrap");
      cell(tr, `${money(a.actual_usd)} vs ${money(a.expected_usd)}`, "num");
      cell(tr, money(a.impact_usd), "num");
      const list = cell(tr, "");
      for (const line of causes(a)) {
        const item = document.createElement("div");
        item.textContent = line;
        list.append(item);
      }
      tr.addEventListener("click", () => this.pick(tr, a));
      tr.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this.pick(tr, a);
        }
      });
      return tr;
    });
    this.body.replaceChildren(...rows);
  }

  pick(tr, anomaly) {
    for (const old of this.body.querySelectorAll("tr.picked")) old.classList.remove("picked");
    tr.classList.add("picked");
    this.picked = tr.dataset.key;
    this.onPick(anomaly);
  }

  // The row of a citation, found by its chunk id (a citation shows a withheld service name by its
  // label, the table the name as stored): highlighted, scrolled to and focused, and its series
  // charted. False when the table (as filtered) does not hold it.
  reveal(chunkId) {
    const tr = [...this.body.rows].find((r) => r.dataset.chunk === chunkId);
    if (!tr) return false;
    const anomaly = this.rows.find((a) => a.chunk_id === chunkId);
    tr.scrollIntoView({ block: "center" });
    tr.focus({ preventScroll: true });
    this.pick(tr, anomaly);
    return true;
  }
}
