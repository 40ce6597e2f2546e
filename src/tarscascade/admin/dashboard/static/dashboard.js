// tarscascade dashboard: live numbers over Server-Sent Events, sparklines, drain.
// Hand-written and dependency-free on purpose: the wheel ships this file as is.
"use strict";

function pick(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function fill(root, data) {
  root.querySelectorAll("[data-k]").forEach((el) => {
    const v = pick(data, el.dataset.k);
    if (v !== undefined) el.textContent = typeof v === "boolean" ? String(v) : v;
  });
}

function spark(svg, values) {
  const w = 240, h = 40;
  if (!values || values.length < 2) { svg.innerHTML = ""; return; }
  const max = Math.max(1, ...values);
  const step = w / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  svg.innerHTML = `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts.join(" ")}"/>` +
    `<text x="${w - 2}" y="10" text-anchor="end">max ${max}</text>`;
  svg.dataset.points = String(values.length);
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) { const s = document.createElement("span"); s.className = "state " + cls; s.textContent = text; td.appendChild(s); }
  else td.textContent = text;
  return td;
}

function nodeRow(r, withAddress) {
  const tr = document.createElement("tr");
  tr.dataset.node = r.name;
  const lag = r.max_lag === null ? "other epoch" : String(r.max_lag);
  const heard = r.heard_s === null ? "never" : `${r.heard_s} s ago`;
  const rev = r.revision === null ? "-" : String(r.revision);
  tr.append(cell(r.name), cell(r.state, r.state), cell(r.via || "registry"));
  if (withAddress) tr.append(cell(r.address));
  tr.append(cell(rev), cell(lag), cell(heard));
  if (withAddress) tr.append(cell(r.children ? String(r.children) : ""));
  return tr;
}

function rows(tbody, items, withAddress, empty, cols) {
  if (!tbody) return;
  tbody.replaceChildren(...items.map((r) => nodeRow(r, withAddress)));
  if (!items.length) {
    const tr = document.createElement("tr"); tr.className = "empty";
    const td = cell(empty); td.colSpan = cols; tr.appendChild(td); tbody.appendChild(tr);
  }
}

function live(url, onData) {
  const dot = document.getElementById("live");
  const es = new EventSource(url);
  es.onmessage = (ev) => { onData(JSON.parse(ev.data)); if (dot) dot.className = "live on"; };
  es.onerror = () => { if (dot) dot.className = "live off"; };
}

function startLive() {
  const kind = document.body.dataset.live;
  if (kind === "fleet") {
    live("/ui/events?view=fleet", (d) => {
      fill(document, d.fleet);
      document.querySelectorAll("[data-spark]").forEach((s) => spark(s, d.fleet.series[s.dataset.spark]));
      rows(document.querySelector('[data-rows="attention"]'), d.fleet.attention, false,
        "every node holds the current revision", 6);
    });
  } else if (kind === "tree") {
    const q = encodeURIComponent(document.body.dataset.q || "");
    live(`/ui/events?view=tree&q=${q}&page=${document.body.dataset.pageno}`, (d) => {
      rows(document.querySelector('[data-rows="tree"]'), d.tree.rows, true, "no node matches", 8);
      const total = document.getElementById("tree-total");
      if (total) total.textContent = `${d.tree.total} nodes · page ${d.tree.page} of ${d.tree.pages}`;
    });
  } else if (kind === "node") {
    live("/ui/events", (d) => fill(document, d));
  }
}

// ---------------------------------------------------------------- drain from the page

async function drain(button) {
  const token = document.getElementById("token").value.trim();
  sessionStorage.setItem("tarscascade-token", token);
  const panel = document.getElementById("drain");
  const bar = document.getElementById("drain-bar");
  const count = document.getElementById("drain-count");
  const state = document.getElementById("drain-state");
  const missing = document.getElementById("drain-missing");
  panel.hidden = false;
  panel.dataset.done = "";
  document.getElementById("drain-endpoint").textContent = button.closest("tr").querySelector("code").textContent;
  state.textContent = "starting";
  missing.textContent = "";
  const headers = { "Content-Type": "application/json", "Accept": "application/x-ndjson" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let rsp;
  try {
    const forced = document.getElementById("drain-force");
    const body = JSON.stringify({ timeout: 30, force: Boolean(forced && forced.checked) });
    rsp = await fetch(button.dataset.drain, { method: "POST", headers, body });
  } catch (e) { state.textContent = `failed: ${e}`; panel.dataset.done = "error"; return; }
  if (!rsp.ok) {
    let msg = rsp.statusText;
    try { msg = (await rsp.json()).error; } catch (e) { /* not JSON */ }
    state.textContent = `refused (HTTP ${rsp.status}): ${msg}`;
    panel.dataset.done = "error";
    return;
  }
  const reader = rsp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const ev = JSON.parse(line);
      if (ev.event === "started") {
        total = ev.nodes.length;
        count.textContent = `0 / ${total}`;
        state.textContent = `revision ${ev.revision}: waiting`;
      } else if (ev.event === "progress") {
        count.textContent = `${ev.acked_count} / ${ev.total}`;
        bar.style.width = `${ev.total ? (100 * ev.acked_count) / ev.total : 100}%`;
        const more = ev.missing_count - ev.missing.length;
        missing.textContent = ev.missing_count ? `waiting for ${ev.missing.join(", ")}${more > 0 ? ` and ${more} more` : ""}` : "";
      } else if (ev.event === "result") {
        count.textContent = `${ev.acked.length} / ${ev.nodes.length}`;
        bar.style.width = "100%";
        state.textContent = ev.complete ? `complete in ${ev.elapsed_s.toFixed(3)} s` : `incomplete after ${ev.elapsed_s.toFixed(1)} s`;
        const notes = [];
        if (ev.missing.length) notes.push(`did not acknowledge: ${ev.missing.join(", ")}`);
        if (ev.offline && ev.offline.length) notes.push(`offline (not waited for, may still serve it): ${ev.offline.join(", ")}`);
        missing.textContent = notes.join(" · ");
        panel.dataset.done = ev.complete ? "complete" : "incomplete";
        bar.className = ev.complete ? "ok" : "bad";
      }
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  startLive();
  const token = document.getElementById("token");
  if (token) token.value = sessionStorage.getItem("tarscascade-token") || "";
  document.querySelectorAll("button[data-drain]").forEach((b) => b.addEventListener("click", () => drain(b)));
});
