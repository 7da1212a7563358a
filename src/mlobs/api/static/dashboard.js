// mlobs dashboard: plain DOM, no framework, no build step. Every piece of data reaches the page
// through textContent or an attribute value, never innerHTML: alert notes, names and messages
// are user-controlled strings.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const KEY_STORE = "mlobs.apiKey"; // sessionStorage: gone when the tab closes
  const ACTOR_STORE = "mlobs.actor";
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    model: null, // the model whose details are shown
    models: [],
    traffic: null, // the previous /monitoring/traffic reading, for rates
    trafficAt: 0,
    rates: {},
    busy: false,
    rendered: {}, // section -> JSON of the data it shows, to skip needless redraws
  };

  // ------------------------------------------------------------------------ DOM helpers

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }

  /** Redraw a section only when its data changed (keeps focus and clicks stable). */
  function changed(section, data) {
    const json = JSON.stringify(data);
    if (state.rendered[section] === json) return false;
    state.rendered[section] = json;
    return true;
  }

  const pct = (x, digits = 1) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`);
  function num(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(2);
    return Number(x.toPrecision(digits + 1)).toString();
  }
  function compact(x) {
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    const a = Math.abs(x);
    if (a >= 1e6) return `${num(x / 1e6, 2)}M`;
    if (a >= 1e3) return `${num(x / 1e3, 2)}k`;
    return num(x, 2);
  }
  const ms = (x) => (x === null || x === undefined ? "–" : `${num(x, 2)} ms`);
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }
  const badge = (status) => el("span", { class: `badge s-${status}` }, String(status).replace("_", " "));

  // ------------------------------------------------------------------------ HTTP

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function request(method, path, body, headers = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!r.ok) {
      const detail = data && Array.isArray(data.detail) && data.detail[0] ? data.detail[0].msg : r.statusText;
      throw new ApiError(r.status, `${r.status}: ${detail || "request failed"}`);
    }
    return data;
  }

  const get = (path) => request("GET", path);

  /** A state-changing call. A 401 or 403 asks for an API key and sends it again with it. */
  async function act(path, body) {
    for (;;) {
      const key = sessionStorage.getItem(KEY_STORE);
      try {
        return await request("POST", path, body, key ? { "X-API-Key": key } : {});
      } catch (err) {
        if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) throw err;
        const reason =
          err.status === 401
            ? key
              ? "The server refused this API key (401). Enter a valid key."
              : "The server requires an API key for this action (401)."
            : "This API key lacks the scope this action needs (403): enter a key with the admin scope.";
        const entered = await askKey(reason);
        if (entered === null) throw new ApiError(err.status, "Not done: no API key given.");
        sessionStorage.setItem(KEY_STORE, entered);
        showForgetKey();
      }
    }
  }

  function askKey(reason) {
    const dialog = $("key-dialog");
    const form = $("key-form");
    const input = $("key-input");
    $("key-reason").textContent = reason;
    input.value = "";
    return new Promise((resolve) => {
      const finish = (value) => {
        form.removeEventListener("submit", onSubmit);
        $("key-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(value);
      };
      const onSubmit = (e) => {
        e.preventDefault();
        const v = input.value.trim();
        if (v) finish(v);
      };
      const onCancel = (e) => {
        e.preventDefault();
        finish(null);
      };
      form.addEventListener("submit", onSubmit);
      $("key-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  function showForgetKey() {
    $("forget-key").hidden = !sessionStorage.getItem(KEY_STORE);
  }

  // ------------------------------------------------------------------------ models

  function renderModels(health, models, traffic, drift, summary) {
    if (!changed("models", [health, models, traffic, drift, summary, state.rates, state.model])) return;
    const byName = Object.fromEntries((models ? models.models : []).map((m) => [m.name, m]));
    const names = health ? Object.keys(health.models) : Object.keys(byName);
    const cards = names.map((name) => {
      const h = (health && health.models[name]) || {};
      const m = byName[name] || {};
      const t = traffic && traffic.models[name];
      const d = drift[name];
      const last = d && d.last_result;
      const open = summary ? summary.by_model[name] || 0 : null;
      const rate = state.rates[name];
      const rows = [
        ["Health", h.loaded ? badge("ok") : el("span", { class: "badge s-critical" }, h.error || "not loaded")],
        ["Version", h.version || m.version || "–"],
        ["Algorithm", m.algorithm || "–"],
        ["Trained", when(m.trained_at)],
        ["Predictions", t ? `${t.predictions.toLocaleString()} (${t.errors} errors)` : "–"],
        ["Traffic", rate === undefined ? "–" : `${num(rate, 2)} /s`],
        ["Latency p50 / p95 / p99", t ? `${ms(t.latency.p50_ms)} / ${ms(t.latency.p95_ms)} / ${ms(t.latency.p99_ms)}` : "–"],
        ["Drift", last ? el("span", {}, badge(last.status), ` share ${pct(last.drift_share, 0)}`) : "no closed window"],
        ["Window fill", d ? `${d.window.rows} / ${d.window.size} rows` : "–"],
        ["Open alerts", open === null ? "–" : String(open)],
      ];
      return el(
        "article",
        { class: `card${name === state.model ? " selected" : ""}`, "data-model": name, "aria-labelledby": `card-${name}` },
        el("h3", { id: `card-${name}` }, name),
        el("dl", {}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
        el("button", { type: "button", onclick: () => select(name) }, `Details of ${name}`),
      );
    });
    $("models").replaceChildren(...cards);
  }

  function renderPicker() {
    const buttons = state.models.map((name) =>
      el("button", { type: "button", "aria-pressed": name === state.model ? "true" : "false", onclick: () => select(name) }, name),
    );
    $("model-picker").replaceChildren(...buttons);
  }

  function select(name) {
    if (name === state.model) return;
    state.model = name;
    for (const k of ["histograms", "history", "quality", "performance"]) delete state.rendered[k];
    for (const card of document.querySelectorAll(".card")) card.classList.toggle("selected", card.dataset.model === name);
    renderPicker();
    refresh();
  }

  // ------------------------------------------------------------------------ alerts

  function renderAlerts(list, summary) {
    if (summary) {
      const s = summary.by_status;
      $("alert-summary").textContent =
        `${s.active || 0} active, ${s.acknowledged || 0} acknowledged, ${s.resolved || 0} resolved` +
        ` · open by severity: ${Object.entries(summary.by_severity).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`;
    }
    if (!list) return;
    const showResolved = $("show-resolved").checked;
    const alerts = list.alerts.filter((a) => showResolved || a.status !== "resolved");
    if (!changed("alerts", [alerts, showResolved])) return;
    $("alerts").tBodies[0].replaceChildren(...alerts.map(alertRow));
    $("alerts-empty").hidden = alerts.length > 0;
  }

  function alertRow(a) {
    const handled = a.resolved_by || a.acknowledged_by;
    const actions = el("td", { class: "actions" });
    if (a.status === "active") actions.append(actionButton(a, "acknowledge", "Acknowledge"));
    if (a.status !== "resolved") actions.append(actionButton(a, "resolve", "Resolve"));
    return el(
      "tr",
      { "data-alert-id": a.id, class: `row-${a.status}` },
      el("td", {}, badge(a.severity)),
      el("td", {}, a.model_name),
      el("td", {}, a.alert_type),
      el("td", {}, a.scope),
      el("td", { class: "status" }, a.status),
      el("td", {}, `${num(a.value)} / ${num(a.threshold)}`),
      el("td", { class: "message" }, a.message),
      el("td", {}, when(a.opened_at)),
      el("td", {}, `${a.occurrences}× · ${when(a.last_seen_at)}`),
      el("td", {}, handled ? `${handled}${a.note ? `: ${a.note}` : ""}` : "–"),
      actions,
    );
  }

  function actionButton(alert, verb, label) {
    return el(
      "button",
      {
        type: "button",
        "aria-label": `${label} alert ${alert.alert_type} on ${alert.model_name}`,
        onclick: (e) => handleAlert(alert, verb, e.currentTarget),
      },
      label,
    );
  }

  async function handleAlert(alert, verb, button) {
    const row = button.closest("tr");
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    const body = {};
    const actor = $("actor").value.trim();
    const note = $("note").value.trim();
    if (actor) body.by = actor;
    if (note) body.note = note;
    const message = $("alert-message");
    try {
      const updated = await act(`/monitoring/alerts/${encodeURIComponent(alert.id)}/${verb}`, body);
      $("note").value = "";
      row.replaceWith(alertRow(updated)); // the new state at once; the refresh confirms it
      delete state.rendered.alerts;
      message.textContent = `Alert ${updated.alert_type} on ${updated.model_name} is now ${updated.status}.`;
      message.className = "notice";
    } catch (err) {
      for (const b of row.querySelectorAll("button")) b.disabled = false;
      message.textContent = `Could not ${verb} the alert: ${err.message}`;
      message.className = "notice error";
    }
    refresh();
  }

  // ------------------------------------------------------------------------ drift

  function renderDrift(status, hist) {
    if (!changed("histograms", [status, hist])) return;
    const parts = [];
    if (status) {
      const w = status.window;
      parts.push(`Reference: ${status.reference.rows.toLocaleString()} rows, model version ${status.reference.model_version}.`);
      parts.push(`Open window: ${w.rows} of ${w.size} rows (verdict from ${w.min_samples}).`);
    }
    if (hist) {
      parts.push(
        hist.window === "closed"
          ? `Current = closed window #${hist.window_id} (${hist.n_rows} rows, evaluated ${when(hist.evaluated_at)}).`
          : hist.window === "open"
            ? `Current = the open window so far (${hist.n_rows} rows; no window has closed yet).`
            : "No live traffic counted yet: only the reference is shown.",
      );
    }
    $("drift-summary").textContent = parts.join(" ");
    if (!hist) return;
    const figures = [...hist.features];
    if (hist.prediction) figures.push({ ...hist.prediction, feature: "model output" });
    $("histograms").replaceChildren(...figures.map(histogramFigure));
  }

  function histogramFigure(f) {
    const caption = el(
      "figcaption",
      {},
      el("strong", {}, f.feature),
      ` ${f.kind} `,
      badge(f.status),
      f.score === null ? (f.reason ? el("span", { class: "muted" }, ` ${f.reason}`) : null) : ` ${f.method} ${num(f.score)}`,
    );
    return el("figure", { class: `hist s-${f.status}`, "data-feature": f.feature }, caption, histogramSvg(f));
  }

  /** Paired bars per bin (reference, current), drawn as inline SVG. */
  function histogramSvg(f) {
    let idx = f.bins.map((_, i) => i);
    const last = f.bins.length - 1; // (missing): drawn only when either side has some
    if (!(f.reference[last] > 0 || (f.current && f.current[last] > 0))) idx = idx.slice(0, last);
    const W = 320, H = 150, left = 30, bottom = 34, top = 6;
    const plotW = W - left - 4, plotH = H - bottom - top;
    const peak = Math.max(0.01, ...idx.map((i) => Math.max(f.reference[i], f.current ? f.current[i] : 0)));
    const slot = plotW / idx.length;
    const bar = Math.max(1, slot * 0.38);
    const y = (v) => top + plotH - (v / peak) * plotH;
    const label = `Histogram of ${f.feature}: reference against current share of rows per bin`;
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" }, svg("title", {}, label));
    g.append(svg("line", { x1: left, y1: top + plotH, x2: W - 4, y2: top + plotH, class: "axis" }));
    g.append(svg("text", { x: left - 3, y: top + 8, class: "tick", "text-anchor": "end" }, pct(peak, 0)));
    g.append(svg("text", { x: left - 3, y: top + plotH, class: "tick", "text-anchor": "end" }, "0"));
    idx.forEach((i, k) => {
      const x0 = left + k * slot + (slot - 2 * bar) / 2;
      const ref = f.reference[i];
      const cur = f.current ? f.current[i] : null;
      const tip = `${f.bins[i]}: reference ${pct(ref)}, current ${cur === null ? "–" : pct(cur)}`;
      g.append(svg("rect", { x: x0, y: y(ref), width: bar, height: Math.max(0, top + plotH - y(ref)), class: "bar ref" }, svg("title", {}, tip)));
      if (cur !== null) {
        g.append(svg("rect", { x: x0 + bar, y: y(cur), width: bar, height: Math.max(0, top + plotH - y(cur)), class: "bar cur" }, svg("title", {}, tip)));
      }
      const name = f.kind === "categorical" || i === last ? f.bins[i] : null;
      if (name !== null) {
        const short = name.length > 9 ? `${name.slice(0, 8)}…` : name;
        const cx = left + k * slot + slot / 2;
        g.append(svg("text", { x: cx, y: top + plotH + 10, class: "tick", "text-anchor": "end", transform: `rotate(-35 ${cx} ${top + plotH + 10})` }, short));
      }
    });
    if (f.kind === "numeric" && f.edges) {
      const step = f.edges.length > 6 ? 2 : 1;
      f.edges.forEach((edge, j) => {
        if (j % step) return;
        const x = left + (j + 1) * slot;
        g.append(svg("text", { x, y: top + plotH + 12, class: "tick", "text-anchor": "middle" }, compact(edge)));
      });
    }
    return g;
  }

  function renderHistory(history, status) {
    if (!changed("history", [history, status && status.thresholds])) return;
    const box = $("drift-history");
    const results = history ? history.results : [];
    if (!results.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No live window has closed yet."));
      return;
    }
    const points = [...results].reverse(); // oldest first
    const W = 640, H = 140, left = 34, top = 8, bottom = 20;
    const plotW = W - left - 8, plotH = H - top - bottom;
    const threshold = status ? status.thresholds.drift_share_threshold : null;
    const x = (i) => left + (points.length === 1 ? plotW / 2 : (i / (points.length - 1)) * plotW);
    const y = (v) => top + plotH - v * plotH;
    const label = `Drift share of the last ${points.length} closed windows, oldest first`;
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart wide" }, svg("title", {}, label));
    g.append(svg("line", { x1: left, y1: y(0), x2: W - 8, y2: y(0), class: "axis" }));
    for (const v of [0, 0.5, 1]) g.append(svg("text", { x: left - 4, y: y(v) + 3, class: "tick", "text-anchor": "end" }, pct(v, 0)));
    if (threshold !== null) {
      g.append(svg("line", { x1: left, y1: y(threshold), x2: W - 8, y2: y(threshold), class: "threshold" }, svg("title", {}, `dataset drift at ${pct(threshold, 0)}`)));
    }
    g.append(svg("polyline", { points: points.map((r, i) => `${x(i)},${y(r.drift_share)}`).join(" "), class: "line" }));
    points.forEach((r, i) => {
      g.append(svg("circle", { cx: x(i), cy: y(r.drift_share), r: 4, class: `dot s-${r.status}` },
        svg("title", {}, `window #${r.window_id}: ${r.status}, drift share ${pct(r.drift_share)}, ${r.n_rows} rows`)));
    });
    const table = el(
      "table",
      { class: "grid" },
      el("caption", { class: "sr-only" }, "Closed windows, newest first"),
      el("thead", {}, el("tr", {}, ["Window", "Evaluated", "Rows", "Status", "Drift share", "Drifted features"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, results.slice(0, 10).map((r) =>
        el("tr", {}, el("td", {}, `#${r.window_id}`), el("td", {}, when(r.created_at)), el("td", {}, r.n_rows),
          el("td", {}, badge(r.status)), el("td", {}, pct(r.drift_share)), el("td", {}, String(r.drifted_features_count))))),
    );
    box.replaceChildren(g, table);
  }

  // ------------------------------------------------------------------------ quality, performance

  function renderQuality(status) {
    const q = status && status.last_result ? status.last_result.quality : null;
    if (!changed("quality", q)) return;
    const box = $("quality");
    if (!q) {
      box.replaceChildren(el("p", { class: "muted" }, "No closed window yet."));
      return;
    }
    const head = el(
      "p",
      {},
      "Overall ", badge(q.status), ` · ${q.n_rows} rows · missing ${pct(q.missing_share)} `, badge(q.missing_status),
      ` · duplicate rows ${q.duplicate_rows} (${pct(q.duplicate_share)}) `, badge(q.duplicate_status),
    );
    const rows = Object.values(q.features).map((f) =>
      el("tr", { class: `row-${f.status}` }, el("th", { scope: "row" }, f.feature), el("td", {}, pct(f.missing_share)),
        el("td", {}, pct(f.reference_missing_share)), el("td", {}, pct(f.out_of_range_share)), el("td", {}, pct(f.unseen_share)),
        el("td", {}, badge(f.status))),
    );
    const table = el(
      "table",
      { class: "grid" },
      el("caption", { class: "sr-only" }, "Data quality per feature"),
      el("thead", {}, el("tr", {}, ["Feature", "Missing", "Missing in reference", "Outside reference range", "Unseen categories", "Status"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows),
    );
    box.replaceChildren(head, table);
  }

  function renderPerformance(p) {
    if (!changed("performance", p)) return;
    const box = $("performance");
    if (!p) {
      box.replaceChildren(el("p", { class: "muted" }, "No performance figures."));
      return;
    }
    const realized = p.realized ? p.realized.metrics : {};
    const estimated = p.estimated ? p.estimated.metrics : {};
    const names = [...new Set([...Object.keys(p.holdout), ...Object.keys(realized), ...Object.keys(estimated)])];
    const rule = p.alert_rule;
    const table = el(
      "table",
      { class: "grid" },
      el("caption", { class: "sr-only" }, "Holdout, realized and estimated performance"),
      el("thead", {}, el("tr", {}, ["Metric", "Holdout", "Realized", "Estimated (no labels)"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, names.map((m) =>
        el("tr", { class: rule && rule.metric === m ? "watched" : "" }, el("th", { scope: "row" }, m),
          el("td", {}, num(p.holdout[m])), el("td", {}, num(realized[m])), el("td", {}, num(estimated[m]))))),
    );
    const lines = [
      `Labels: ${p.labels.total} received; realized figures need ${p.labels.min_labels} ` +
        `(${p.realized ? `${p.realized.n_labels} used` : "not yet"}); windows of ${p.labels.window_size}, ${p.labels.windows_evaluated} evaluated.`,
      p.estimated ? `Estimate over the latest ${p.estimated.n_predictions} predictions.` : null,
      rule ? `Alert when ${rule.metric} goes ${rule.direction} ${num(rule.bound)}.` : null,
      p.concept_drift ? `Concept drift (${p.concept_drift.detector}): statistic ${num(p.concept_drift.statistic)} of ${num(p.concept_drift.threshold)}.` : null,
    ];
    box.replaceChildren(el("p", { class: "muted" }, lines.filter(Boolean).join(" ")), table);
  }

  // ------------------------------------------------------------------------ refresh

  function updateRates(traffic) {
    const now = performance.now();
    if (state.traffic && now > state.trafficAt) {
      const dt = (now - state.trafficAt) / 1000;
      for (const [name, t] of Object.entries(traffic.models)) {
        const before = state.traffic.models[name];
        if (before) state.rates[name] = Math.max(0, (t.predictions - before.predictions) / dt);
      }
    }
    state.traffic = traffic;
    state.trafficAt = now;
  }

  const settle = async (p) => {
    try {
      return { value: await p };
    } catch (err) {
      return { error: err };
    }
  };

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const [health, models, traffic, alerts, summary] = await Promise.all(
        [get("/health"), get("/predict/models"), get("/monitoring/traffic"), get("/monitoring/alerts?limit=200"), get("/monitoring/alerts/summary")].map(settle),
      );
      const names = health.value ? Object.keys(health.value.models) : models.value ? models.value.models.map((m) => m.name) : [];
      if (names.length && state.models.join() !== names.join()) {
        state.models = names;
        if (!state.model || !names.includes(state.model)) state.model = names[0];
        renderPicker();
      }
      const drift = {};
      await Promise.all(state.models.map(async (n) => {
        const r = await settle(get(`/monitoring/drift/status/${encodeURIComponent(n)}`));
        drift[n] = r.value || null;
      }));
      const m = state.model ? encodeURIComponent(state.model) : null;
      const [hist, history, perf] = m
        ? await Promise.all([get(`/monitoring/drift/histograms/${m}`), get(`/monitoring/drift/history/${m}?limit=30`), get(`/monitoring/performance/${m}`)].map(settle))
        : [{}, {}, {}];
      if (traffic.value) updateRates(traffic.value);
      renderService(health);
      renderModels(health.value, models.value, traffic.value, drift, summary.value);
      renderAlerts(alerts.value, summary.value);
      renderDrift(drift[state.model], hist.value);
      renderHistory(history.value, drift[state.model]);
      renderQuality(drift[state.model]);
      renderPerformance(perf.value);
      const failed = [health, models, traffic, alerts, summary, hist, history].filter((r) => r.error);
      const err = $("page-error");
      err.hidden = failed.length === 0;
      err.textContent = failed.length ? `Some data could not be read: ${failed.map((r) => r.error.message).join("; ")}` : "";
      $("refreshed").textContent = new Date().toLocaleTimeString();
    } finally {
      state.busy = false;
    }
  }

  function renderService(health) {
    const box = $("service-status");
    if (!health.value) {
      box.replaceChildren(badge("critical"), ` Cannot read /health: ${health.error.message}`);
      return;
    }
    const h = health.value;
    const level = h.status === "healthy" ? "ok" : h.status === "degraded" ? "warning" : "critical";
    box.replaceChildren(
      el("span", { class: `badge s-${level}` }, h.status),
      ` mlobs ${h.version} · database ${h.database} · log queue ${h.log_queue_depth}`,
      ...(h.reasons.length ? [el("span", { class: "reasons" }, ` · ${h.reasons.join("; ")}`)] : []),
    );
  }

  function start() {
    const actor = $("actor");
    actor.value = localStorage.getItem(ACTOR_STORE) || "";
    actor.addEventListener("change", () => localStorage.setItem(ACTOR_STORE, actor.value.trim()));
    $("show-resolved").addEventListener("change", () => refresh());
    $("refresh-now").addEventListener("click", () => refresh());
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      showForgetKey();
    });
    showForgetKey();
    setInterval(() => {
      if ($("auto-refresh").checked && !document.hidden) refresh();
    }, REFRESH_MS);
    refresh();
  }

  start();
})();
