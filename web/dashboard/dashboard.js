// The live dashboard: asks the server for its newest reading and redraws every part of the
// page. Plain JavaScript, no library and no network beyond this server. Read only.
"use strict";

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const STALE_AFTER = 3; // readings missed (beyond the time one takes) before the page calls its figures old

const columns = {
  services: [["service"], ["healthy", "up"], ["state"], ["restarts", "restarts", "number"], ["detail"]],
  topics: [["topic"], ["messages", "messages", "number"], ["per_second", "per second", "number"]],
  lags: [["kind"], ["name"], ["lag", "lag", "number"]],
  jobs: [
    ["job"], ["state"], ["restarts", "restarts", "number"], ["running_since", "running since"],
    ["records_in", "records in", "number"], ["records_out", "records out", "number"],
    ["watermark"], ["behind_s", "watermark behind (s)", "number"], ["stalled"],
  ],
  connectors: [["connector"], ["state"], ["tasks"], ["restarts", "restarts", "number"], ["table"], ["stalled"]],
  problems: [["problem"], ["count", "count", "number"]],
  errors: [
    ["window_start", "minute"], ["requests", "page loads", "number"], ["errors", "failed", "number"],
    ["error_rate", "error rate", "number"], ["alert"],
  ],
};
// The cell that names a row, so a row can be found by what it is.
const keys = { services: "service", topics: "topic", lags: "name", jobs: "job", connectors: "connector",
  problems: "problem", errors: "window_start", pageviews: "window_start" };

function text(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return value.toLocaleString("en");
  const shown = String(value);
  // The server sends times as ISO text in UTC: show them as "2026-11-30 12:00:05".
  return ISO_TIME.test(shown) ? shown.slice(0, 19).replace("T", " ") : shown;
}

function element(tag, attributes, content) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (content !== undefined) node.textContent = content;
  return node;
}

// The disk's row says "ok", "low" (a warning: its detail names the free space and what uses it)
// or "full" (no event is taken in until space is freed).
function flag(part, column, value, cell) {
  const warned = column === "state" && value === "low";
  const bad = (column === "healthy" && value === false) || (column === "alert" && value === true) ||
    (column === "state" && value !== null && !warned && !/^(RUNNING|running|external|ok)$/.test(value)) ||
    (part === "problems" && column === "count" && value > 0);
  if (bad) cell.classList.add("bad");
  else if (warned) cell.classList.add("warn");
  else if (column === "healthy" || column === "state") cell.classList.add("good");
}

function table(part, rows) {
  const result = element("table");
  const head = result.createTHead().insertRow();
  for (const [name, label, kind] of columns[part]) head.appendChild(element("th", kind ? { class: kind } : {}, label || name));
  const body = result.createTBody();
  for (const row of rows) {
    const line = body.insertRow();
    line.dataset.key = String(row[keys[part]]);
    for (const [name, , kind] of columns[part]) {
      const value = name === "error_rate" && row[name] !== null ? `${(row[name] * 100).toFixed(1)} %` : row[name];
      const cell = element("td", { "data-field": name, "data-value": JSON.stringify(row[name]) }, text(value));
      if (kind) cell.classList.add(kind);
      flag(part, name, row[name], cell);
      line.appendChild(cell);
    }
  }
  return result;
}

// Bars, oldest minute left; red where the minute raised an alert.
// A dashed line marks ``line`` (the alert threshold) when given.
function bars(rows, value, label, alert, line) {
  const width = 400, height = 110, ordered = rows.slice().reverse();
  const top = Math.max(line || 0, ...ordered.map((row) => row[value] || 0)) || 1;
  const step = width / Math.max(ordered.length, 1);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 16}`);
  svg.setAttribute("width", "100%");
  ordered.forEach((row, index) => {
    const h = ((row[value] || 0) / top) * height;
    const bar = document.createElementNS(svg.namespaceURI, "rect");
    bar.setAttribute("class", alert && row[alert] ? "bar alert" : "bar");
    bar.setAttribute("x", index * step + 2);
    bar.setAttribute("y", height - h);
    bar.setAttribute("width", Math.max(step - 4, 1));
    bar.setAttribute("height", h);
    const title = document.createElementNS(svg.namespaceURI, "title");
    title.textContent = `${text(row.window_start)}: ${label(row)}`;
    bar.appendChild(title);
    svg.appendChild(bar);
    const tick = document.createElementNS(svg.namespaceURI, "text");
    tick.setAttribute("x", index * step + 2);
    tick.setAttribute("y", height + 12);
    tick.textContent = String(row.window_start || "").slice(11, 16);
    svg.appendChild(tick);
  });
  if (line) {
    const mark = document.createElementNS(svg.namespaceURI, "line");
    const y = height - (line / top) * height;
    for (const [name, v] of Object.entries({ x1: 0, x2: width, y1: y, y2: y, class: "threshold" })) mark.setAttribute(name, v);
    svg.appendChild(mark);
  }
  return svg;
}

function draw(part, data) {
  const body = document.querySelector(`#${part} .body`);
  body.replaceChildren();
  if (!data.ok) {
    body.appendChild(element("p", { class: "error", "data-error": "" }, `not read: ${data.error}`));
    return;
  }
  if (part === "pageviews") {
    if (data.rows.length) body.appendChild(bars(data.rows, "views", (row) => `${text(row.views)} views`));
    const list = element("table");
    const line = list.createTBody();
    for (const row of data.rows) {
      const tr = line.insertRow();
      tr.dataset.key = row.window_start;
      tr.appendChild(element("td", {}, text(row.window_start)));
      tr.appendChild(element("td", { class: "number", "data-field": "views", "data-value": JSON.stringify(row.views) }, text(row.views)));
    }
    body.appendChild(list);
    if (!data.rows.length) body.appendChild(element("p", {}, `no closed window on ${data.days.join(" or ")} (UTC), the days of ${data.basis}`));
    return;
  }
  if (part === "errors" && data.rows.length) {
    const threshold = data.alert_percent ? data.alert_percent / 100 : null;
    body.appendChild(bars(data.rows, "error_rate", (row) => `${text(row.errors)} of ${text(row.requests)} failed`, "alert", threshold));
    if (threshold) body.appendChild(element("p", { class: "legend" }, `dashed: the alert threshold, ${data.alert_percent} % of a minute's page loads; red: a minute with an alert`));
  }
  body.appendChild(table(part, data.rows));
}

let every = 5;

async function refresh() {
  const status = document.getElementById("reading");
  try {
    const answer = await fetch("/api/reading", { cache: "no-store" });
    const reading = await answer.json();
    every = reading.every || every;
    if (!reading.pending) {
      for (const part of Object.keys(keys)) draw(part, reading[part]);
      status.dataset.takenAt = String(reading.taken_at);
      status.dataset.took = String(reading.took_seconds);
      status.textContent = `namespace ${reading.namespace} · read at ${new Date(reading.taken_at * 1000).toISOString().slice(11, 19)} UTC` +
        ` (took ${reading.took_seconds} s) · refreshes every ${every} s`;
    }
    const age = Date.now() / 1000 - Number(status.dataset.takenAt || Date.now() / 1000);
    status.classList.toggle("stale", age > Number(status.dataset.took || 0) + STALE_AFTER * every);
  } catch (problem) {
    status.textContent = "the dashboard server does not answer; is `clicklib dashboard` still running?";
    status.classList.add("stale");
  }
  setTimeout(refresh, every * 1000);
}

refresh();
