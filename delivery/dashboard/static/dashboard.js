// The dashboard's page script: renders what the server's stream sends, in place, and asks for
// actions. No framework and no build step: the DOM, EventSource and SVG drawn here.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const TOKEN = meta("delivery-token");
const READ_ONLY = meta("delivery-read-only") === "true";
const [NAMESPACE, NAME] = meta("delivery-rollout").split("/");
const SVG = "http://www.w3.org/2000/svg";
const PHASE_COLOURS = { Successful: "#1a7f37", Failed: "#cf222e", Error: "#cf222e", Inconclusive: "#9a6700", Running: "#0969da" };

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "on") for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// An object's age as kubectl prints it (the plugin's `age`): 45s, 3m20s, 25m, 5h10m, 20h, 2d3h, 40d.
function age(created) {
  if (!created) return "";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(created)) / 1000));
  const m = Math.floor(s / 60), h = Math.floor(s / 3600), d = Math.floor(s / 86400);
  const two = (large, small) => large + (small[0] ? `${small[0]}${small[1]}` : "");
  if (s < 120) return `${s}s`;
  if (s < 600) return two(`${m}m`, [s % 60, "s"]);
  if (s < 3 * 3600) return `${m}m`;
  if (s < 8 * 3600) return two(`${h}h`, [m % 60, "m"]);
  if (s < 48 * 3600) return `${h}h`;
  if (s < 8 * 86400) return two(`${d}d`, [h % 24, "h"]);
  return `${d}d`;
}

function countdown(ends) {
  const left = Math.max(0, Math.round((Date.parse(ends) - Date.now()) / 1000));
  return left >= 60 ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, "0")}s left` : `${left}s left`;
}

function badge(phase) {
  return el("span", { class: `badge phase-${phase}`, text: phase });
}

function notice(text, error) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = error ? "error" : "";
  box.hidden = false;
}

// --- the stream -----------------------------------------------------------------------------------

function stream(path, render) {
  const live = document.getElementById("live");
  const source = new EventSource(path);
  const take = (event) => {
    render(JSON.parse(event.data), event.type);
    live.textContent = "live";
    live.className = "live on";
  };
  source.addEventListener("snapshot", take);
  source.addEventListener("change", take);
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live"; };
}

// Ages and countdowns move with the clock, not with the stream.
setInterval(() => {
  for (const cell of document.querySelectorAll("[data-created]")) cell.textContent = age(cell.dataset.created);
  for (const cell of document.querySelectorAll("[data-ends]")) cell.textContent = countdown(cell.dataset.ends);
}, 1000);

// --- the list -----------------------------------------------------------------------------------

const ROLLOUT_CELLS = (r) => [
  r.namespace,
  el("a", { href: `/rollouts/${r.namespace}/${r.name}`, text: r.name }),
  r.strategy, badge(r.phase), r.step, r.weight === null ? "-" : String(r.weight), r.ready,
  r.stable || "-", r.canary || "-", el("span", { "data-created": r.created, text: age(r.created) }),
];
const COMPONENT_CELLS = (c) => [
  c.namespace,
  c.rollout ? el("a", { href: `/rollouts/${c.namespace}/${c.rollout}`, text: c.name }) : c.name,
  el("span", { title: c.message || "" }, badge(c.phase)),
  c.step || "-", c.weight === null || c.weight === undefined ? "-" : String(c.weight),
  c.stable || "-", c.canary || "-", el("span", { "data-created": c.created, text: age(c.created) }),
];

function table(id, cells) {
  const body = document.querySelector(`#${id} tbody`);
  const rows = new Map();
  const make = (item) => el("tr", { "data-key": `${item.namespace}/${item.name}` }, ...cells(item).map((cell) => el("td", {}, cell)));
  return {
    // The whole table at once (a snapshot): sorted once, inserted in one go.
    replace(items) {
      rows.clear();
      const made = items.map(make);
      made.sort((a, b) => (a.dataset.key < b.dataset.key ? -1 : 1));
      for (const row of made) rows.set(row.dataset.key, row);
      body.replaceChildren(...made);
    },
    upsert(item) {
      const row = make(item);
      const key = row.dataset.key;
      const old = rows.get(key);
      if (old) old.replaceWith(row);
      rows.set(key, row);
      if (!old) {
        const after = [...rows.keys()].sort().find((other) => other > key);
        body.insertBefore(row, after ? rows.get(after) : null);
      }
    },
    remove(key) { const row = rows.get(key); if (row) { row.remove(); rows.delete(key); } },
  };
}

function listPage() {
  const tables = { rollouts: table("rollouts", ROLLOUT_CELLS), components: table("components", COMPONENT_CELLS) };
  stream("/stream", (data, type) => {
    if (type === "snapshot") {
      tables.rollouts.replace(data.rollouts);
      tables.components.replace(data.components);
      return;
    }
    for (const item of data.rollouts) tables.rollouts.upsert(item);
    for (const item of data.components) tables.components.upsert(item);
    for (const [what, namespace, name] of data.gone) tables[what].remove(`${namespace}/${name}`);
  });
}

// --- charts -------------------------------------------------------------------------------------

// A line over time with optional thresholds (dashed lines across): {at, value, phase} points.
function chart(points, { thresholds = [], steps = false, low, high, width = 460, height = 170, label = "" } = {}) {
  const margin = { left: 48, right: 12, top: 10, bottom: 22 };
  const plotted = points.filter((p) => p.value !== null && p.value !== undefined);
  const times = points.map((p) => Date.parse(p.at));
  const values = [...plotted.map((p) => p.value), ...thresholds.map((t) => t.value)];
  let min = low ?? Math.min(...values, 0), max = high ?? Math.max(...values, 1e-9);
  if (min === max) max = min + 1;
  const pad = (max - min) * 0.08;
  if (low === undefined) min -= min === 0 ? 0 : pad;
  if (high === undefined) max += pad;
  let t0 = Math.min(...times), t1 = Math.max(...times, Date.now());
  if (!isFinite(t0)) t0 = t1 - 60000;
  if (t1 - t0 < 1000) t0 = t1 - 1000;
  const x = (t) => margin.left + ((t - t0) / (t1 - t0)) * (width - margin.left - margin.right);
  const y = (v) => height - margin.bottom - ((v - min) / (max - min)) * (height - margin.top - margin.bottom);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "plot", role: "img", "aria-label": label });
  for (const v of [min, (min + max) / 2, max]) {
    root.append(svg("line", { class: "grid", x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: margin.left - 4, y: y(v) + 4, "text-anchor": "end" }, +v.toPrecision(3)));
  }
  root.append(svg("line", { class: "axis", x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }));
  root.append(svg("line", { class: "axis", x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom }));
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  root.append(svg("text", { x: margin.left, y: height - 6 }, clock(t0)));
  root.append(svg("text", { x: width - margin.right, y: height - 6, "text-anchor": "end" }, clock(t1)));
  for (const t of thresholds) {
    root.append(svg("line", { class: `threshold ${t.kind}`, "data-value": t.value, x1: margin.left, x2: width - margin.right, y1: y(t.value), y2: y(t.value) }));
    root.append(svg("text", { class: `threshold-label ${t.kind}`, x: width - margin.right - 2, y: y(t.value) - 4, "text-anchor": "end" }, `${t.kind} if ${t.operator} ${t.value}`));
  }
  let path = "";
  plotted.forEach((p, i) => {
    const px = x(Date.parse(p.at)), py = y(p.value);
    if (i === 0) path = `M${px},${py}`;
    else path += steps ? `H${px}V${py}` : `L${px},${py}`;
  });
  if (steps && plotted.length) path += `H${x(t1)}`;
  if (path) root.append(svg("path", { class: "series", d: path }));
  if (!steps) for (const p of plotted) {
    root.append(svg("circle", { class: "point", "data-phase": p.phase, cx: x(Date.parse(p.at)), cy: y(p.value), r: 4, fill: PHASE_COLOURS[p.phase] || "#57606a" }));
  }
  return root;
}

// --- one Rollout --------------------------------------------------------------------------------

const ACTION_LABELS = {
  "promote": "Promote (next step)", "promote-full": "Promote fully", "abort": "Abort", "retry": "Retry", "pause": "Pause",
};

async function act(action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = `${ACTION_LABELS[action]}: rollout ${NAMESPACE}/${NAME}?`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "ok") return;
  const response = await fetch(`/act/${NAMESPACE}/${NAME}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Delivery-Token": TOKEN },
    body: JSON.stringify({ action }),
  });
  const answer = await response.json().catch(() => ({ error: response.statusText }));
  if (response.ok) notice(answer.done, false);
  else notice(`${ACTION_LABELS[action]} refused (${response.status}): ${answer.error}`, true);
}

function section(title, ...content) {
  return el("section", { id: title.toLowerCase().replace(/[^a-z]+/g, "-") }, el("h2", { text: title }), ...content);
}

function rows(header, items, cells) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...header.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...items.map((item) => el("tr", {}, ...cells(item).map((c) => el("td", {}, c))))));
}

function analysisFigure(metric) {
  const points = metric.measurements;
  const condition = [metric.successCondition && `success: ${metric.successCondition}`, metric.failureCondition && `failure: ${metric.failureCondition}`].filter(Boolean).join(" · ");
  return el("figure", { class: "chart analysis", "data-metric": metric.name },
    el("figcaption", {}, el("strong", { text: metric.name }), " ", badge(metric.phase || "Running"),
      metric.dryRun ? el("span", { class: "muted", text: " dry-run" }) : null,
      el("br"), el("code", { text: condition || "no condition" }),
      el("span", { class: "muted", text: ` · ${points.length} measurement${points.length === 1 ? "" : "s"}` })),
    chart(points, { thresholds: metric.thresholds, label: `${metric.name} against its threshold` }));
}

function rolloutPage(page) {
  const main = document.getElementById("main");
  if (page === null) {
    main.replaceChildren(el("p", { class: "muted", text: `No rollout ${NAMESPACE}/${NAME} (deleted, or not yet created).` }));
    return;
  }
  const summary = el("div", { class: "summary" },
    el("h1", { text: `${page.namespace}/${page.name}` }), badge(page.phase),
    el("span", { text: `step ${page.step}` }), el("span", { text: `weight ${page.weight ?? 0}%` }),
    el("span", { text: `ready ${page.ready}` }),
    el("span", { text: `stable ${page.stable || "-"} · canary ${page.canary || "-"}` }),
    el("p", { class: "message", id: "message", text: page.message }));
  const actions = READ_ONLY ? null : el("div", { class: "actions" },
    ...Object.keys(ACTION_LABELS).map((action) => el("button", {
      "data-action": action, class: action === "abort" ? "danger" : "", text: ACTION_LABELS[action],
      on: { click: () => act(action) },
    })));
  const steps = page.steps.length ? el("ol", { class: "steps" }, ...page.steps.map((step, i) =>
    el("li", { class: step.state.replace(" ", "-"), "data-state": step.state },
      `${i}. ${step.description}`,
      step.pauseEndsAt ? el("span", { class: "countdown", "data-ends": step.pauseEndsAt, text: countdown(step.pauseEndsAt) }) : null)))
    : el("p", { class: "muted", text: `${page.strategy}: no canary steps` });
  const weights = page.weights.map((w) => ({ at: w.at, value: w.weight, phase: "" }));
  const charts = [];
  for (const analysis of page.analyses) {
    for (const metric of analysis.metrics) charts.push(analysisFigure(metric));
  }
  const analyses = page.analyses.length ? el("div", {},
    rows(["Analysis", "Kind", "Revision", "Step", "Phase", "Message"], page.analyses.slice().reverse(), (a) =>
      [a.name, a.kind, a.revision, a.stepIndex ?? "-", badge(a.phase), el("span", { class: "message", text: a.message || "" })]),
    el("div", { class: "charts" }, ...charts)) : el("p", { class: "muted", text: "No analysis yet." });
  main.replaceChildren(
    summary, actions,
    section("Steps", steps),
    section("Traffic weight", el("figure", { class: "chart weight" },
      el("figcaption", { text: "canary weight (%) since the dashboard started" }),
      chart(weights, { steps: true, low: 0, high: 100, label: "canary weight over time" }))),
    section("Revisions", rows(["ReplicaSet", "Revision", "Role", "Pods ready", "Available", "Images", "Age"], page.replicasets, (rs) =>
      [rs.name, rs.revision, rs.role, `${rs.ready}/${rs.replicas}`, String(rs.available), rs.images.join(", "),
        el("span", { "data-created": rs.created, text: age(rs.created) })])),
    section("Analysis", analyses),
    section("Events", rows(["Time", "Type", "Reason", "Message"], page.events, (e) =>
      [new Date(e.at).toLocaleTimeString(), e.type, e.reason, el("span", { class: "message", text: e.message + (e.count > 1 ? ` (×${e.count})` : "") })])),
  );
}

if (NAME) stream(`/stream/${NAMESPACE}/${NAME}`, rolloutPage);
else listPage();
