// Calls to the tenant-scoped routes of this origin, with the key as a Bearer header (never in a URL).
// The key lives in sessionStorage: this tab only, gone when it closes or on sign-out.

const KEY = "costlake.key";
const MAX_PAGES = 20; // a sane cap when following cursors: 20 pages of 1,000 rows

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function query(params) {
  const found = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") found.set(name, String(value));
  }
  const text = found.toString();
  return text ? `?${text}` : "";
}

async function call(path, params, init = {}) {
  const headers = { Authorization: `Bearer ${key.get() || ""}`, ...(init.headers || {}) };
  const answer = await fetch(path + query(params), { ...init, headers, cache: "no-store" });
  if (!answer.ok) {
    let problem = {};
    try {
      problem = await answer.json();
    } catch {
      problem = {};
    }
    throw new ApiError(answer.status, problem.title || `HTTP ${answer.status}`, problem.detail || "");
  }
  return answer;
}

export async function getJson(path, params) {
  return (await call(path, params)).json();
}

// Every page of a listing (up to MAX_PAGES), rows in order; `truncated` when there were more.
export async function allRows(path, params) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const found = await getJson(path, { ...params, limit: 1000, cursor });
    rows.push(...found.data);
    cursor = found.next_cursor;
    if (!cursor) break;
  }
  rows.truncated = Boolean(cursor); // more rows than the cap: the page says so
  return rows;
}

// The same listing as CSV, every page joined (the header once), as text.
export async function allCsv(path, params) {
  const parts = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const answer = await call(path, { ...params, format: "csv", limit: 1000, cursor });
    const text = await answer.text();
    parts.push(page === 0 ? text : text.slice(text.indexOf("\r\n") + 2));
    cursor = answer.headers.get("X-Next-Cursor");
    if (!cursor) break;
  }
  return parts.join("");
}

export async function postJson(path, body) {
  const init = { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
  return (await call(path, null, init)).json();
}
