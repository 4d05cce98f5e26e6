// The costlake page: sign in with a tenant key, then the tenant's daily cost, anomalies, one series
// with its expected band, questions answered by POST /explain, and CSV downloads of the view.
// Only the tenant-scoped routes of this origin are called, so the page shows what the key may see.

import { allCsv, allRows, ApiError, getJson, key, postJson } from "./api.js";
import { drawSeries, drawTrend } from "./chart.js";
import { money } from "./svg.js";
import { AnomalyTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const KEY_SHAPE = /^[\x21-\x7e]{1,200}$/;
const view = { names: new Map(), anomalies: [] };
const table = new AnomalyTable($("anomaly-head"), $("anomaly-rows"), (a) => run(() => focusSeries(a)));

function alertShow(text) {
  $("alert").textContent = text;
  $("alert").hidden = false;
}

function alertClear() {
  $("alert").textContent = "";
  $("alert").hidden = true;
}

const accountName = (id) => view.names.get(id) || id;

function filters() {
  return {
    from: $("f-from").value,
    to: $("f-to").value,
    account_id: $("f-account").value,
    service: $("f-service").value,
  };
}

const FLASH = "costlake.flash"; // a message for the sign-in form across the reload below

// Signing out (or a refused key) reloads the page: nothing of the last tenant survives, neither what
// was drawn, typed or chosen nor a request still on its way, whose answer a reload discards.
function signedOut(message) {
  key.clear();
  if (message) sessionStorage.setItem(FLASH, message);
  location.reload();
}

function signInForm() {
  const message = sessionStorage.getItem(FLASH);
  sessionStorage.removeItem(FLASH);
  if (message) alertShow(message);
  $("key").focus();
}

// Runs a step; a 401 returns to the sign-in form with the reason, any other problem shows its title
// and detail in the alert region.
async function run(step) {
  try {
    await step();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signedOut(`That key was not accepted: ${error.detail || error.title}`);
    } else if (error instanceof ApiError) {
      alertShow(`${error.title}: ${error.detail}`);
    } else {
      alertShow(`Something went wrong: ${error.message}`);
    }
  }
}

function options(select, first, values) {
  const kept = select.value;
  const made = values.map(([value, text]) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    return option;
  });
  select.replaceChildren(first, ...made);
  select.value = values.some(([value]) => value === kept) ? kept : "";
}

async function start() {
  const accounts = (await getJson("/accounts")).data;
  view.names = new Map(accounts.map((a) => [a.account_id, a.account_name || a.account_id]));
  $("sign-in-view").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  alertClear();
  const label = (a) => (a.account_name ? `${a.account_name} (${a.account_id})` : a.account_id);
  const more = accounts.length > 4 ? `, and ${accounts.length - 4} more` : "";
  $("who").textContent = `Signed in · ${accounts.length} account${accounts.length === 1 ? "" : "s"}: `
    + accounts.slice(0, 4).map(label).join(", ") + more;
  options($("f-account"), $("f-account").options[0], accounts.map((a) => [a.account_id, label(a)]));
  const services = await allRows("/costs/daily", { group_by: "service" });
  const names = [...new Set(services.map((r) => r.service_name))].sort();
  options($("f-service"), $("f-service").options[0], names.map((s) => [s, s]));
  await refresh();
}

async function refresh() {
  alertClear();
  const asked = filters();
  const groupBy = $("group-by").value;
  const [costs, anomalies] = await Promise.all([
    allRows("/costs/daily", { ...asked, group_by: groupBy }),
    allRows("/anomalies", { ...asked, sort: "-date" }),
  ]);
  view.anomalies = anomalies;
  const key = groupBy === "account" ? (r) => r.account_id : (r) => r.service_name;
  const label = groupBy === "account" ? accountName : (s) => s;
  drawTrend($("trend"), $("trend-legend"), costs, key, label, anomalies);
  $("trend-title").textContent = `Daily cost by ${groupBy}`;
  table.show(anomalies, accountName);
  const count = `${anomalies.length} anomal${anomalies.length === 1 ? "y" : "ies"} in this view`;
  const cut = anomalies.truncated || costs.truncated ? " (the first pages only: narrow the dates to see all)" : "";
  $("anomaly-count").textContent = count + cut;
}

async function focusSeries(anomaly) {
  const found = await getJson("/series", { account_id: anomaly.account_id, service: anomaly.service_name });
  drawSeries($("series"), found);
  $("series-title").textContent = `${accountName(anomaly.account_id)} · ${anomaly.service_name}`;
  const count = found.anomalies.length;
  $("series-hint").textContent = `${found.title}: ${count} anomal${count === 1 ? "y" : "ies"}; the shaded band is the expected range.`;
  $("series").closest("section").scrollIntoView({ block: "nearest" });
}

function citation(c) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cite";
  button.textContent = `${c.usage_date} · ${accountName(c.account_id)} · ${c.service_name} · ${money(c.impact_usd)}`;
  button.addEventListener("click", () => {
    if (!table.reveal(c.chunk_id)) {
      alertShow("That anomaly is not in the table as filtered: clear the filters to see it.");
    }
  });
  item.append(button);
  return item;
}

async function ask(question) {
  const asked = filters();
  const given = Object.fromEntries(Object.entries(asked).filter(([, v]) => v));
  const body = { query: question, k: 5, ...(Object.keys(given).length ? { filters: given } : {}) };
  $("answer").replaceChildren(document.createTextNode("Thinking…"));
  let found;
  try {
    found = await postJson("/explain", body);
  } catch (error) {
    $("answer").replaceChildren(); // the problem shows in the alert region
    throw error;
  }
  const text = document.createElement("p");
  text.className = "explanation";
  text.textContent = found.explanation;
  const cited = document.createElement("ol");
  cited.className = "citations";
  cited.append(...found.citations.map(citation));
  const heading = document.createElement("h3");
  heading.textContent = found.citations.length ? "Cited anomalies" : "No anomaly cited";
  $("answer").replaceChildren(text, heading, cited);
}

async function download(path, params, name) {
  const text = await allCsv(path, params);
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function bind() {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const given = $("key").value.trim();
    $("key").value = "";
    if (!given) return;
    // A header carries printable ASCII only; anything else is not a key and is never stored.
    if (!KEY_SHAPE.test(given)) {
      alertShow("That is not a costlake key: keys are printed by `costlake tenants add-key` and start with clk_.");
      return;
    }
    key.set(given);
    run(start);
  });
  $("sign-out").addEventListener("click", () => signedOut(""));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    run(refresh);
  });
  $("group-by").addEventListener("change", () => run(refresh));
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (question) run(() => ask(question));
  });
  $("csv-anomalies").addEventListener("click", () =>
    run(() => download("/anomalies", { ...filters(), sort: "-date" }, "costlake-anomalies.csv")));
  $("csv-costs").addEventListener("click", () =>
    run(() => download("/costs/daily", { ...filters(), group_by: $("group-by").value }, "costlake-daily-costs.csv")));
}

// A reload must not bring back what the browser remembers of the forms (a question, a filter).
for (const form of document.forms) form.reset();
bind();
if (key.get() && KEY_SHAPE.test(key.get())) run(start);
else signInForm();
