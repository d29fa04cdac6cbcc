// The dashboard's one script: reads the page's inline data, fetches /api/v1 (with the
// bearer token from sessionStorage when the server requires one) and renders tables and
// Plotly charts. No framework, no build step.
"use strict";
(() => {
  const PAGE = JSON.parse(document.getElementById("page-data").textContent);
  const API = "/api/v1";
  const TOKEN_KEY = "hpo-token";
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const $ = (sel) => document.querySelector(sel);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // --- HTTP --------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function api(path) {
    const response = await fetch(API + path, { headers: authHeaders() });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("The token was refused; log in again.");
    }
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).detail.map((d) => d.message).join("; ");
      } catch (_) { /* not an ErrorPublic body: keep the status text */ }
      throw new HttpError(response.status, message);
    }
    return response.json();
  }

  // A POST or DELETE; resolves to the response, throws an HttpError with the API's message.
  async function send(method, path) {
    const response = await fetch(API + path, { method, headers: authHeaders() });
    if (!response.ok) {
      let message = response.statusText || `HTTP ${response.status}`;
      try {
        message = (await response.json()).detail.map((d) => d.message).join("; ");
      } catch (_) { /* not an ErrorPublic body */ }
      throw new HttpError(response.status, message);
    }
    return response;
  }

  // Server-sent events read through fetch (EventSource cannot send the Authorization
  // header); reconnects with Last-Event-ID until the study's terminal event.
  async function follow(path, onEvent) {
    let lastId = null;
    for (;;) {
      const headers = authHeaders();
      if (lastId) headers["Last-Event-ID"] = lastId;
      try {
        const response = await fetch(API + path, { headers });
        if (!response.ok) return;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.startsWith(":")) continue; // keep-alive
            let kind = "message";
            for (const line of block.split("\n")) {
              if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("event:")) kind = line.slice(6).trim();
            }
            onEvent(kind);
            if (TERMINAL.has(kind)) return;
          }
        }
      } catch (_) { /* the connection dropped: retry below */ }
      await sleep(3000);
    }
  }

  // --- rendering helpers -------------------------------------------------------------------

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  // The one number format of every table, text and tick: integers as they are, anything
  // else to 4 significant digits, in exponent form below 1e-3 or from 1e6 ("6.67e-6").
  function fmt(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") {
      const size = Math.abs(value);
      if (!Number.isFinite(value)) return String(value);
      if (size !== 0 && (size < 1e-3 || size >= 1e6)) {
        return value.toExponential(3).replace(/\.?0+e/, "e").replace("e+", "e");
      }
      return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    }
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  // A status as text with its plots' marker (trial statuses) beside it.
  const statusBadge = (status) => h("span", { class: `status status-${status}` },
    STATUS[status] ? h("span", { class: "glyph", "aria-hidden": "true" }, STATUS[status].glyph) : null, status);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

  function kvTable(tbody, entries) {
    tbody.replaceChildren(
      ...entries.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, fmt(value)))),
    );
  }

  // A YAML number PyYAML reads back as a float (it needs a dot before the exponent).
  function yamlNumber(n) {
    const s = String(n);
    return /e/.test(s) && !/\./.test(s.split("e")[0]) ? s.replace("e", ".0e") : s;
  }

  function yamlScalar(v) {
    if (v === null) return "null";
    if (typeof v === "number") return yamlNumber(v);
    if (typeof v === "boolean") return String(v);
    const plain = /^[A-Za-z_][\w.\-\/ ]*$/.test(v) && !/^(true|false|null|yes|no|on|off|~)$/i.test(v);
    return plain && v.trim() === v ? v : JSON.stringify(v);
  }

  // The spec as block YAML; fields left at null (defaults) are omitted.
  function toYaml(value, indent = "") {
    return Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([key, v]) => {
        if (Array.isArray(v)) {
          const flow = v.every((x) => x === null || typeof x !== "object")
            ? `[${v.map(yamlScalar).join(", ")}]` : JSON.stringify(v);
          return `${indent}${key}: ${flow}`;
        }
        if (v && typeof v === "object") {
          const inner = toYaml(v, indent + "  ");
          return inner ? `${indent}${key}:\n${inner}` : `${indent}${key}: {}`;
        }
        return `${indent}${key}: ${yamlScalar(v)}`;
      })
      .join("\n");
  }


  // What a trial's one value is, in words: "val_accuracy, last epoch" (objective.value).
  const valueLabel = (study) => `${study.objective.metric}, ${study.spec.objective.value || "last"} epoch`;

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = h("script", { src });
      script.addEventListener("load", resolve);
      script.addEventListener("error", () => reject(new Error(`${src} could not be loaded.`)));
      document.head.append(script);
    });
  }

  // Plotly's cartesian bundle (1.5 MB) draws every plot; pages preload it
  // (<link rel="preload">) and run it only once their first plot needs it, so tables and
  // text never wait for it. It is the global `Plotly`.
  let plotlyLoading = null;
  function plotly() {
    plotlyLoading ??= loadScript(PAGE.plotlyUrl).then(() => window.Plotly);
    return plotlyLoading;
  }

  // No Plotly logo (a link to plotly.com) and no "Edit in Chart Studio" / "Share chart"
  // (they upload the data to Plotly's cloud: this dashboard works offline and keeps
  // hyperparameters in-house); only the mode-bar buttons worth their tab stops.
  const plotConfig = {
    responsive: true,
    displaylogo: false,
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    plotlyServerURL: "",
    modeBarButtonsToRemove: ["sendDataToCloud", "editInChartStudio", "select2d", "lasso2d",
      "autoScale2d", "toggleSpikelines", "hoverClosestCartesian", "hoverCompareCartesian"],
  };
  const baseLayout = (title, extra = {}) => ({
    title: { text: title },
    margin: { l: 60, r: 20, t: 50, b: 50 },
    font: { color: "#1a1a1a" },
    ...extra,
  });

  // One look per trial status, the same in every plot and in the table: a colour
  // (Okabe-Ito, told apart with colour-blindness too) and a marker shape or line dash, so
  // that colour alone never carries it. Red is kept for "best".
  const STATUS = {
    completed: { color: "#0072b2", symbol: "circle", dash: "solid", glyph: "●", label: "completed" },
    pruned: { color: "#e69f00", symbol: "x", dash: "dot", glyph: "✕", label: "pruned (stopped early)" },
    failed: { color: "#cc79a7", symbol: "diamond", dash: "dashdot", glyph: "◆", label: "failed" },
    running: { color: "#009e73", symbol: "triangle-up", dash: "dash", glyph: "▲", label: "running" },
  };
  const STATUS_ORDER = Object.keys(STATUS);
  const styleOf = (status) => STATUS[status] || STATUS.completed;

  // [status, items] for each status present, in STATUS_ORDER.
  function byStatus(items) {
    return STATUS_ORDER.map((s) => [s, items.filter((t) => t.status === s)]).filter(([, rows]) => rows.length > 0);
  }

  // "trial 3 · pruned at epoch 2": a point's hover text.
  function trialText(t) {
    const where = t.status === "pruned" || t.status === "failed" ? ` at epoch ${t.epochs_run}`
      : t.status === "running" ? `, epoch ${t.epochs_run}` : "";
    return `trial ${t.number} · ${t.status}${where}`;
  }

  // A legend entry with nothing drawn: how a status looks where traces are not per status.
  const legendOnly = (name, extra) => ({ x: [null], y: [null], name, hoverinfo: "skip", showlegend: true, ...extra });

  // Log or linear y axes, per plot, switched by a button above it: log by default for
  // losses and learning rates (they span decades; on a linear axis most trials sit on 0).
  const logY = {};
  const isLossLike = (name) => /loss|^lr$|learning_rate/i.test(name.split(",")[0]);

  function yScale(id, defaultLog) {
    const div = document.getElementById(id);
    if (!(id in logY)) {
      logY[id] = defaultLog;
      const button = h("button", { type: "button", class: "scale", "data-plot": id,
        "aria-pressed": String(defaultLog), "aria-label": `Log scale for ${div.dataset.name || id}` },
      "Log scale");
      button.addEventListener("click", () => {
        logY[id] = !logY[id];
        button.setAttribute("aria-pressed", String(logY[id]));
        Plotly.relayout(div, { "yaxis.type": logY[id] ? "log" : "linear", "yaxis.autorange": true });
      });
      div.before(h("div", { class: "plot-tools" }, button));
    }
    return logY[id] ? "log" : "linear";
  }

  // What a plot shows, for screen readers: its container (role="figure") is named by a
  // sentence saying what is drawn now ("Optimization history: val_accuracy, last epoch of
  // 12 trials …"), updated with each draw.
  function describe(id, text) {
    const div = document.getElementById(id);
    div.setAttribute("aria-label", `${div.dataset.name || id}: ${text}`);
  }

  // "9 completed, 2 pruned, 1 failed": how many of each status `items` holds.
  const statusCounts = (items) => byStatus(items).map(([s, rows]) => `${rows.length} ${s}`).join(", ");

  // "lr, optimizer and hidden".
  const listed = (names) => (names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`);

  // Epochs are whole numbers: a tick every epoch up to 10, then every ceil(n / 10).
  const epochTicks = (n) => ({ tick0: 0, dtick: Math.max(1, Math.ceil(n / 10)), tickformat: "d" });

  // Plots that link: clicking a trial's point (or line) opens its page. Every trace that
  // draws trials carries their numbers as `customdata`. Re-bound after each draw: a purge
  // (switching the parallel coordinates' bundle) drops a plot's handlers.
  function linkToTrials(div, studyId) {
    const element = typeof div === "string" ? document.getElementById(div) : div;
    if (!element.on) return;
    element.removeAllListeners?.("plotly_click");
    element.on("plotly_click", (event) => {
      const number = (event.points || []).map((p) => p.customdata).find((n) => Number.isInteger(n));
      if (number) window.location.href = `/studies/${studyId}/trials/${number}`;
    });
    element.classList.add("linked");
  }

  function isLog(param) {
    return Boolean(param && (param.loguniform || param.log));
  }

  // --- login -------------------------------------------------------------------------------

  function showLogin(message) {
    $("#login").hidden = false;
    $("#content").hidden = true;
    $("#logout").hidden = true;
    $("#login-error").textContent = message || "";
    $("#token").focus();
  }

  function setUpLogin(run) {
    $("#login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = $("#token").value.trim();
      const response = await fetch(`${API}/studies?limit=1`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      if (!response.ok) {
        $("#login-error").textContent = "That token was not accepted.";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $("#login").hidden = true;
      $("#content").hidden = false;
      $("#logout").hidden = false;
      run();
    });
    $("#logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      window.location.reload();
    });
  }

  function showFailure(error) {
    const main = $("#content");
    if (error instanceof HttpError && error.status === 401) return;
    const title = error instanceof HttpError && error.status === 404 ? "Not found" : "Error";
    main.replaceChildren(h("h1", {}, title), h("p", {}, error.message),
      h("p", {}, h("a", { href: "/" }, "Back to the studies")));
  }

  // --- studies list ------------------------------------------------------------------------

  async function studiesPage() {
    const filter = $("#status-filter");
    let timer = null;
    async function load() {
      clearTimeout(timer);
      const query = filter.value ? `&status=${encodeURIComponent(filter.value)}` : "";
      const page = await api(`/studies?limit=100${query}`);
      const studies = page.data;
      $("#studies tbody").replaceChildren(...studies.map(studyRow));
      $("#studies").hidden = studies.length === 0;
      $("#empty").hidden = studies.length > 0;
      if (filter.value) $("#empty").textContent = `No ${filter.value} studies.`;
      const live = studies.some((s) => s.status === "running" || s.status === "queued");
      $("#live").textContent = live ? "Live: refreshing every 3 s" : "";
      if (live) timer = setTimeout(() => load().catch(showFailure), 3000);
    }
    filter.addEventListener("change", () => load().catch(showFailure));
    setUpNewStudy();
    const clone = new URLSearchParams(window.location.search).get("clone");
    await Promise.all([load(), clone ? cloneInto(clone) : null]);
  }

  // "Clone": the New study form opened with a study's spec (renamed "NAME-copy") to edit.
  async function cloneInto(id) {
    const study = await api(`/studies/${encodeURIComponent(id)}`);
    $("#new-study-spec").value = toYaml({ ...study.spec, name: `${study.spec.name}-copy` }) + "\n";
    $("#new-study").open = true;
    $("#new-study-spec").focus();
  }

  // "New study": a YAML spec posted as is; the API's field errors are listed under it.
  function setUpNewStudy() {
    const form = $("#new-study-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const errors = $("#new-study-errors");
      errors.replaceChildren();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const response = await fetch(`${API}/studies`, {
          method: "POST", body: $("#new-study-spec").value,
          headers: { ...authHeaders(), "Content-Type": "application/yaml" },
        });
        if (response.status === 201) {
          window.location.href = `/studies/${(await response.json()).id}`;
          return;
        }
        let problems = [{ field: "", message: response.statusText || `HTTP ${response.status}` }];
        try {
          problems = (await response.json()).detail;
        } catch (_) { /* not an ErrorPublic body */ }
        errors.replaceChildren(...problems.map((p) =>
          h("li", {}, p.field ? h("code", {}, p.field) : null, p.field ? ": " : "", p.message)));
        $("#new-study-spec").setAttribute("aria-invalid", "true");
        errors.focus();
      } finally {
        button.disabled = false;
      }
    });
  }

  // "3 min 20 s", "2 h 5 min": how long a study has run (or ran).
  function duration(startIso, endIso) {
    if (!startIso) return "—";
    const seconds = Math.max(0, Math.round(((endIso ? new Date(endIso) : new Date()) - new Date(startIso)) / 1000));
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
    const hours = Math.floor(minutes / 60);
    return hours < 48 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function studyRow(s) {
    const c = s.trial_counts;
    const done = c.completed + c.pruned;
    const target = s.trials_target ?? "?";
    const progress = h("span", {},
      h("progress", { max: s.trials_target || done || 1, value: done, "aria-label": `${done} of ${target} trials finished` }),
      ` ${c.completed} done · ${c.pruned} pruned · ${c.failed} failed · ${c.running} running / ${target}`);
    const strategy = `${s.strategy.sampler ?? "?"} + ${s.strategy.scheduler ?? "?"}`;
    return h("tr", { "data-id": s.id },
      h("td", { class: "num" }, s.id),
      h("td", {}, h("a", { href: `/studies/${s.id}` }, s.name)),
      h("td", {}, s.owner ?? "—"),
      h("td", {}, statusBadge(s.status)),
      h("td", {}, strategy),
      h("td", {}, progress),
      // The best value says which metric and which way is better: "0.7894 (max val_accuracy)".
      h("td", { class: "num" }, fmt(s.best_value),
        s.best_value === null ? null : h("span", { class: "muted" }, ` (${s.objective.mode} ${s.objective.metric})`)),
      h("td", {}, when(s.started_at)),
      h("td", { class: "num" }, duration(s.started_at, s.finished_at)));
  }

  // --- one study ---------------------------------------------------------------------------

  // The compare page takes 2 to this many trials.
  const MAX_COMPARED = 4;

  // A trial's value in the table's sort column (`state.sort`, as the API's `sort`).
  function sortValue(t, key) {
    if (key === "objective_value") return t.value;
    if (key.startsWith("param:")) return t.config[key.slice(6)];
    return key in t && key !== "config" ? t[key] : t.final_metrics[key];
  }

  // Ascending (`sign` 1) or descending (-1); missing values last either way, as the API.
  function compareValues(a, b, sign) {
    const missing = (v) => v === null || v === undefined;
    if (missing(a) || missing(b)) return missing(a) - missing(b);
    if (typeof a === "number" && typeof b === "number") return sign * (a - b);
    return sign * String(a).localeCompare(String(b));
  }

  async function studyPage() {
    const id = PAGE.studyId;
    const state = { sort: "number", order: "asc", status: "", offset: 0, selected: new Set() };
    const plotData = requestPlotData(id);
    let study = await api(`/studies/${id}`);
    const params = Object.keys(study.spec.space || {});
    // With a selection, the table shows the selected trials (read once per selection),
    // sorted, filtered and paged here.
    let selectionRows = { key: null, data: [] };

    function renderSummary() {
      document.title = `${study.name} · hpo`;
      $("#study-title").textContent = `${study.name} (study ${study.id})`;
      const c = study.trial_counts;
      $("#study-status").replaceChildren(statusBadge(study.status),
        ` ${study.objective.mode} ${study.objective.metric} · ${study.strategy.sampler} + ${study.strategy.scheduler}` +
        ` · ${c.completed} completed, ${c.pruned} pruned, ${c.failed} failed, ${c.running} running of ${study.trials_target ?? "?"}`);
      $("#spec").textContent = toYaml(study.spec);
      const best = study.best_trial;
      if (best) {
        const tbody = h("tbody");
        kvTable(tbody, [["trial", best.number], [valueLabel(study), best.value],
          ["best epoch's value", best.best_value],
          ...params.filter((p) => p in best.config).map((p) => [p, best.config[p]])]);
        $("#best").replaceChildren(h("div", { class: "best-grid" },
          h("table", { class: "kv" }, tbody),
          h("div", {},
            h("p", {}, h("a", { href: `/studies/${id}/trials/${best.number}` }, `Trial ${best.number} in full`)),
            h("p", { class: "muted" }, "Retrain it from the database and check its value:"),
            h("pre", { id: "command" }, `hpo train --trial ${id}/${best.number}`))));
      }
    }

    // A column per final metric (the value at the trial's last epoch) that any page so far
    // has shown, the objective aside: its last value is the "last" column.
    const metricNames = new Set();
    let columns = [];
    function updateColumns(trials) {
      for (const t of trials) {
        for (const name of Object.keys(t.final_metrics)) {
          if (name !== "epoch" && name !== study.objective.metric) metricNames.add(name);
        }
      }
      allColumns = [
        { key: "number", label: "#", sort: "number" },
        { key: "status", label: "Status" },
        ...params.map((p) => ({ key: p, label: p, param: true, sort: `param:${p}` })),
        { key: "value", label: valueLabel(study), sort: "objective_value" },
        { key: "best_value", label: "best epoch", sort: "best_value",
          title: `${study.objective.metric} at the trial's best epoch` },
        { key: "epochs_run", label: "Epochs", sort: "epochs_run" },
        // "final lr", not "lr": a metric's header never repeats a hyperparameter's.
        ...[...metricNames].sort().map((m) => ({ key: m, label: `final ${m}`, sort: m, metric: true,
          title: `${m} at the trial's last epoch` })),
        { key: "select", label: "Compare" },
      ];
      columns = allColumns.filter((col) => !hiddenColumns.has(col.label));
      renderChooser();
    }

    // The column chooser: every column but # and Compare can be hidden; the choice is kept
    // per study in this browser.
    const COLUMNS_KEY = `hpo-hidden-columns-${id}`;
    let allColumns = [];
    const hiddenColumns = new Set(JSON.parse(localStorage.getItem(COLUMNS_KEY) || "[]"));
    let chooserFor = "";
    function renderChooser() {
      const optional = allColumns.filter((col) => col.key !== "number" && col.key !== "select");
      const signature = optional.map((col) => col.label).join("\n");
      if (signature === chooserFor) return;
      chooserFor = signature;
      $("#column-list").replaceChildren(...optional.map((col) => h("label", {},
        h("input", { type: "checkbox", checked: !hiddenColumns.has(col.label), "data-column": col.label,
          onchange: (event) => {
            if (event.target.checked) hiddenColumns.delete(col.label);
            else hiddenColumns.add(col.label);
            localStorage.setItem(COLUMNS_KEY, JSON.stringify([...hiddenColumns]));
            loadTrials().catch(showFailure);
          } }), ` ${col.label}`)));
    }

    function renderHeader() {
      const row = $("#trials thead tr");
      row.replaceChildren(...columns.map((col) => {
        if (!col.sort) return h("th", { scope: "col", title: col.title }, col.label);
        const active = state.sort === col.sort;
        const ariaSort = active ? (state.order === "asc" ? "ascending" : "descending") : null;
        const arrow = active ? (state.order === "asc" ? " ▲" : " ▼") : "";
        return h("th", { scope: "col", "aria-sort": ariaSort, title: col.title },
          h("button", { type: "button", class: "sort", "data-sort": col.sort,
            onclick: () => { sortBy(col.sort); } }, col.label + arrow));
      }));
    }

    function sortBy(key) {
      state.refocus = key;  // the header is drawn anew: keep the keyboard on this column
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = key;
        const objective = key === "objective_value" || key === "best_value";
        state.order = objective && study.objective.mode === "max" ? "desc" : "asc";
      }
      state.offset = 0;
      loadTrials().catch(showFailure);
    }

    // The selection's summary above the plots and the table, and its compare link: the
    // selected trials, or the best MAX_COMPARED of them.
    function renderSelection() {
      const active = linked.numbers !== null;
      $("#clear-selection").hidden = !active;
      $("#table-selection").hidden = !active;
      const compare = $("#compare-selection");
      if (!active) {
        $("#selection-note").textContent = "";
        compare.hidden = true;
        return;
      }
      const n = linked.numbers.size;
      const names = linked.dimensions.filter((d) => linked.brushes.has(d.name)).map((d) => d.name);
      $("#selection-note").textContent = `${n} of ${linked.trials.length} trials selected by their ${listed(names)}.`;
      $("#table-selection-text").textContent = `Showing the ${n} trials selected on the parallel coordinates.`;
      const best = selectedBestFirst().slice(0, MAX_COMPARED).map((t) => t.number).sort((a, b) => a - b);
      compare.hidden = best.length < 2;
      compare.href = `/studies/${id}/compare?trials=${best.join(",")}`;
      compare.textContent = n <= MAX_COMPARED ? `Compare the ${n} selected trials`
        : `Compare the best ${MAX_COMPARED} of the ${n} selected`;
    }

    function updateCompareLink() {
      const link = $("#compare-link");
      const chosen = [...state.selected].sort((a, b) => a - b);
      link.hidden = chosen.length < 2 || chosen.length > MAX_COMPARED;
      link.href = `/studies/${id}/compare?trials=${chosen.join(",")}`;
      link.textContent = `Compare trials ${chosen.join(", ")}`;
    }

    function trialRow(t) {
      const cells = columns.map((col) => {
        if (col.key === "number") {
          const best = t.number === study.best_trial?.number;
          return h("th", { scope: "row", class: "num" },
            best ? h("span", { class: "best-mark", title: "best trial" }, "★ ") : null,
            h("a", { href: `/studies/${id}/trials/${t.number}`, "aria-label": best ? `trial ${t.number}, the best` : null }, t.number));
        }
        if (col.key === "status") {
          const stopped = t.status === "pruned" || t.status === "failed";
          return h("td", {}, statusBadge(t.status),
            stopped ? h("span", { class: "muted" }, ` at epoch ${t.epochs_run}`) : null);
        }
        if (col.key === "select") {
          const box = h("input", { type: "checkbox", "aria-label": `Compare trial ${t.number}`,
            checked: state.selected.has(t.number),
            onchange: (e) => {
              if (e.target.checked) state.selected.add(t.number);
              else state.selected.delete(t.number);
              updateCompareLink();
            } });
          return h("td", {}, box);
        }
        const value = col.param ? t.config[col.key] : col.metric ? t.final_metrics[col.key] : t[col.key];
        return h("td", { class: typeof value === "number" ? "num" : null }, fmt(value));
      });
      return h("tr", { "data-number": t.number, class: t.number === study.best_trial?.number ? "best" : null }, cells);
    }

    async function selectedPage() {
      const key = [...linked.numbers].sort((a, b) => a - b).join(",");
      if (selectionRows.key !== key) {
        const data = key ? (await api(`/studies/${id}/selection?numbers=${key}`)).data : [];
        selectionRows = { key, data };
      }
      const rows = selectionRows.data.filter((t) => !state.status || t.status === state.status);
      const sign = state.order === "desc" ? -1 : 1;
      rows.sort((a, b) => compareValues(sortValue(a, state.sort), sortValue(b, state.sort), sign) || a.number - b.number);
      return { data: rows.slice(state.offset, state.offset + PAGE.perPage), count: rows.length };
    }

    async function loadTrials() {
      const status = state.status ? `&status=${state.status}` : "";
      const page = linked.numbers ? await selectedPage()
        : await api(`/studies/${id}/trials?limit=${PAGE.perPage}&offset=${state.offset}` +
          `&sort=${state.sort}&order=${state.order}${status}`);
      updateColumns(page.data);
      renderHeader();
      if (state.refocus) {
        $(`#trials thead button[data-sort="${CSS.escape(state.refocus)}"]`)?.focus();
        state.refocus = null;
      }
      $("#trials tbody").replaceChildren(...page.data.map(trialRow));
      $("#trials-empty").hidden = page.data.length > 0;
      const last = Math.min(state.offset + PAGE.perPage, page.count);
      $("#page-info").textContent = page.count ? `${state.offset + 1}–${last} of ${page.count}` : "";
      $("#prev").disabled = state.offset === 0;
      $("#next").disabled = last >= page.count;
    }

    $("#trial-status").addEventListener("change", (e) => {
      state.status = e.target.value;
      state.offset = 0;
      loadTrials().catch(showFailure);
    });
    $("#prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - PAGE.perPage);
      loadTrials().catch(showFailure);
    });
    $("#next").addEventListener("click", () => {
      state.offset += PAGE.perPage;
      loadTrials().catch(showFailure);
    });
    // Linked views: a new selection on the parallel coordinates redraws the other plots and
    // shows only the selected trials in the table.
    linked.onChange = () => {
      state.offset = 0;
      selectionChanged(study).catch(showFailure);
      loadTrials().catch(showFailure);
    };
    linked.onSelectionDrawn = renderSelection;
    for (const button of [$("#clear-selection"), $("#show-all-trials")]) {
      button.addEventListener("click", () => {
        linked.brushes.clear();
        linked.onChange();
      });
    }
    $("#copy-spec").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("#spec").textContent);
        $("#copy-done").textContent = "Copied.";
      } catch (_) {
        $("#copy-done").textContent = "Copying is not allowed here: select the text instead.";
      }
    });

    // Study actions: cancel (queued or running), delete (confirmed; not while running),
    // export; the elapsed time of a running study ticks every second.
    function renderActions() {
      const live = study.status === "queued" || study.status === "running";
      $("#cancel-study").hidden = !live;
      $("#delete-study").hidden = study.status === "running";
      $("#elapsed").textContent = study.status === "queued" ? "waiting for a runner"
        : !study.started_at ? ""
        : study.finished_at ? `ran ${duration(study.started_at, study.finished_at)}`
        : `running for ${duration(study.started_at)}`;
    }
    setInterval(() => { if (study.status === "running") renderActions(); }, 1000);
    const say = (text) => { $("#action-message").textContent = text; };
    $("#cancel-study").addEventListener("click", async () => {
      try {
        await send("POST", `/studies/${id}/cancel`);
        study = await api(`/studies/${id}`);
        renderSummary();
        renderActions();
        say("Cancelled: its runner stops its trials.");
      } catch (error) {
        say(`Not cancelled: ${error.message}`);
      }
    });
    const dialog = $("#confirm-delete");
    $("#delete-study").addEventListener("click", () => {
      $("#confirm-delete-title").textContent = `Delete study ${study.id} (${study.name})?`;
      dialog.showModal();
    });
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "delete") {
        $("#delete-study").focus();
        return;
      }
      try {
        await send("DELETE", `/studies/${id}`);
        window.location.href = "/";
      } catch (error) {
        say(`Not deleted: ${error.message}`);
      }
    });
    // With tokens on, a plain link cannot carry the Authorization header: fetch the file.
    for (const link of document.querySelectorAll("a.export")) {
      link.addEventListener("click", async (event) => {
        if (!sessionStorage.getItem(TOKEN_KEY)) return;
        event.preventDefault();
        const response = await fetch(link.href, { headers: authHeaders() });
        if (!response.ok) {
          say(`Export failed: HTTP ${response.status}`);
          return;
        }
        const url = URL.createObjectURL(await response.blob());
        const save = h("a", { href: url, download: link.getAttribute("download"), hidden: true });
        document.body.append(save);
        save.click();
        save.remove();
        URL.revokeObjectURL(url);
      });
    }

    renderSummary();
    renderActions();
    await Promise.all([loadTrials(), loadPlots(study, plotData)]);

    if (!TERMINAL.has(study.status)) {
      let pending = null;
      const refresh = async () => {
        study = await api(`/studies/${id}`);
        selectionRows = { key: null, data: [] };
        renderSummary();
        renderActions();
        await Promise.all([loadTrials(), loadPlots(study)]);
      };
      follow(`/studies/${id}/events`, () => {
        clearTimeout(pending);
        pending = setTimeout(() => refresh().catch(showFailure), 500);
      });
      // Epochs are not events: while trials run, their curves are fetched again every
      // few seconds, so each partial curve grows as its epochs are reported.
      let polling = false;
      const timer = setInterval(async () => {
        if (TERMINAL.has(study.status)) clearInterval(timer);
        if (polling || study.trial_counts.running === 0 || !lastSample) return;
        polling = true;
        try {
          const path = curvesPath(id);
          drawCurves(study, path ? await api(path) : null);
        } catch (_) { /* the next tick tries again */ } finally {
          polling = false;
        }
      }, RUNNING_CURVES_POLL_MS);
    }
  }

  const RUNNING_CURVES_POLL_MS = 2000;

  // The plots' data, requested at once (the page asks before it has the study itself).
  // Each promise is marked handled: whoever awaits it later still sees its error, but one
  // that fails before anyone awaits it is not an "uncaught" console error.
  function requestPlotData(id) {
    const early = (path) => {
      const request = path ? api(path) : Promise.resolve(null);
      request.catch(() => {});
      return request;
    };
    return {
      points: early(`/studies/${id}/points`),
      curves: early(curvesPath(id)),
      lr: early(curvesPath(id, "lr")),
      importance: early(`/studies/${id}/importance`),
    };
  }

  // Curves drawn while some trials are selected: the best of them, at most this many.
  const SELECTED_CURVES = 75;
  const SELECTED_LR_CURVES = 20;

  // The /curves request of the curves plot (or the learning-rate one, `metric` "lr"): the
  // best, a sample and the running trials; with a selection, its best trials; null when
  // the selection is empty (nothing to draw).
  function curvesPath(id, metric = null) {
    const base = `/studies/${id}/curves?` + (metric ? `metric=${metric}&top=10&sample=10` : "top=50&sample=25");
    if (!linked.numbers) return base;
    const chosen = selectedBestFirst().slice(0, metric ? SELECTED_LR_CURVES : SELECTED_CURVES);
    return chosen.length ? `${base}&numbers=${chosen.map((t) => t.number).join(",")}` : null;
  }

  // Redraws what the selection changes: the plots of /points at once, then the curves.
  async function selectionChanged(study) {
    drawPointPlots(study);
    const id = study.id;
    const [curves, lr] = await Promise.all([curvesPath(id), curvesPath(id, "lr")].map((p) => (p ? api(p) : null)));
    drawCurves(study, curves);
    drawLearningRate(study, lr);
  }

  // The last /points answer: what a new selection redraws from.
  let lastSample = null;

  // History, slices, distribution and contour of the selected trials (all when none is
  // selected); the parallel coordinates draw every trial, the unselected ones in grey.
  function drawPointPlots(study) {
    const sample = lastSample;
    const metric = valueLabel(study);
    const params = Object.keys(study.spec.space || {});
    const space = study.spec.space;
    const steps = sample.best_so_far;
    linked.mode = study.objective.mode;
    plotParallel(sample.data, params, space, metric, steps.length ? steps[steps.length - 1].number : null);
    const shown = linked.numbers ? sample.data.filter((t) => linked.numbers.has(t.number)) : sample.data;
    plotHistory({ ...sample, data: shown }, metric);
    plotSlices(shown, params, space, metric);
    plotDistribution(shown, metric);
    setUpContour(params, () => drawPointPlots(study));
    if (params.length >= 2) plotContour(shown, params, space, metric);
    for (const div of ["plot-history", "plot-slice", "plot-parallel", "plot-contour"]) linkToTrials(div, study.id);
    linked.onSelectionDrawn();
  }

  // A /curves answer of nothing: an empty selection.
  const noCurves = (study) => ({ metric: study.objective.metric, mode: study.objective.mode, total: 0,
    best_number: study.best_trial?.number ?? null, data: [] });

  function drawCurves(study, curves) {
    plotCurves(curves || noCurves(study), `${study.objective.metric} per epoch`, study.spec.budget?.max_epochs);
    linkToTrials("plot-curves", study.id);
  }

  function drawLearningRate(study, lr) {
    plotLearningRate(lr || { ...noCurves(study), metric: "lr" });
    linkToTrials("plot-lr", study.id);
  }

  // Each plot is drawn as soon as its own data is in: a slow importance fit never holds
  // back the history, and the trials table never waits for any of them.
  async function loadPlots(study, requested) {
    const ready = plotly();
    const draw = (request, render) => Promise.all([ready, request]).then(([, data]) => render(data));
    const { points, curves, lr, importance } = requested || requestPlotData(study.id);
    const { total } = await points;
    $("#plots-empty").hidden = total > 0;
    for (const div of document.querySelectorAll("#plots .plot")) div.closest("figure").hidden = total === 0;
    if (total === 0) {
      await Promise.allSettled([curves, lr, importance]);
      return;
    }
    await Promise.all([
      draw(points, (sample) => {
        $("#points-note").textContent = sample.data.length < sample.total
          ? `History, parallel coordinates, contour and slices show ${sample.data.length.toLocaleString()} of ` +
            `${sample.total.toLocaleString()} trials with a value: the best ${sample.best_shown.toLocaleString()} ` +
            "and a random sample of the rest. The best-so-far line counts every trial."
          : "";
        lastSample = sample;
        drawPointPlots(study);
      }),
      draw(curves, (data) => drawCurves(study, data)),
      draw(lr, (data) => drawLearningRate(study, data)),
      draw(importance, plotImportance),
    ]);
  }

  function plotHistory(sample, metric) {
    const shown = sample.data;
    // The best-so-far steps, carried on to the last trial shown.
    const steps = sample.best_so_far;
    const lastNumber = Math.max(...steps.map((s) => s.number), ...shown.map((t) => t.number));
    const traces = byStatus(shown).map(([status, rows]) => ({
      x: rows.map((t) => t.number), y: rows.map((t) => t.value), mode: "markers", type: "scatter",
      name: styleOf(status).label, customdata: rows.map((t) => t.number), text: rows.map(trialText),
      hovertemplate: "%{text}<br>%{y}<extra></extra>",
      marker: { color: styleOf(status).color, symbol: styleOf(status).symbol, size: 8, opacity: 0.8 },
    }));
    if (steps.length > 0) {
      traces.push({ x: [...steps.map((s) => s.number), lastNumber], y: [...steps.map((s) => s.value), steps[steps.length - 1].value],
        mode: "lines", name: "best so far", hoverinfo: "skip", line: { color: "#d93025", shape: "hv", width: 2 } });
    }
    // Trial numbers are whole: never a tick at 1.5.
    Plotly.react("plot-history", traces, baseLayout("Optimization history", {
      xaxis: { title: { text: "trial" }, ...epochTicks(Number.isFinite(lastNumber) ? lastNumber : 1) },
      yaxis: { title: { text: metric }, type: yScale("plot-history", isLossLike(metric)) },
      legend: { orientation: "h", y: -0.28 }, margin: { l: 60, r: 20, t: 50, b: 90 },
    }), plotConfig);
    const best = steps.length ? `; the best so far reaches ${fmt(steps.at(-1).value)} at trial ${steps.at(-1).number}` : "";
    describe("plot-history", `${metric} of ${shown.length} trials by trial number (${statusCounts(shown) || "none"})${best}.`);
  }

  // One line per trial of a /curves response, the best one thick, red and drawn last (on
  // top); `style(c)` gives each line's name and dash.
  // `byStatus` colours each line by its trial's status (with the status legend added by
  // the caller); otherwise each trial gets its own colour and legend entry.
  function curveTraces(curves, byStatusColour) {
    const traces = curves.data.map((c) => {
      const isBest = c.number === curves.best_number;
      const style = styleOf(c.status);
      return {
        x: c.steps, y: c.values, mode: "lines", name: `trial ${c.number} (${c.status})`,
        customdata: c.steps.map(() => c.number), showlegend: !byStatusColour,
        hovertemplate: `trial ${c.number} · ${c.status}<br>epoch %{x}: %{y}<extra></extra>`,
        line: { width: isBest ? 4 : 1.2, color: isBest ? "#d93025" : byStatusColour ? style.color : undefined,
          dash: byStatusColour ? style.dash : "solid" },
        opacity: isBest ? 1 : 0.7,
      };
    });
    return traces.sort((a, b) => a.line.width - b.line.width);
  }

  // Learning curves by status; a running trial's line ends in its status' marker at the
  // last epoch reported so far and grows as the page polls (see studyPage). `maxEpochs`
  // (the study's budget) fixes the epoch axis so that a growing line has its frame.
  function plotCurves(curves, yTitle, maxEpochs) {
    const traces = curveTraces(curves, true);
    const running = curves.data.filter((c) => c.status === "running" && c.steps.length > 0);
    if (running.length > 0) {
      traces.push({
        x: running.map((c) => c.steps.at(-1)), y: running.map((c) => c.values.at(-1)),
        mode: "markers", name: "running: latest epoch", text: running.map((c) => `trial ${c.number} · running, epoch ${c.steps.at(-1)}`),
        customdata: running.map((c) => c.number), hovertemplate: "%{text}<br>%{y}<extra></extra>",
        marker: { symbol: STATUS.running.symbol, size: 10, color: STATUS.running.color, line: { width: 1, color: "#1a1a1a" } },
      });
    }
    // Pruned trials end in a cross where the scheduler stopped them (one trace for all).
    const pruned = curves.data.filter((c) => c.status === "pruned" && c.steps.length > 0);
    if (pruned.length > 0) {
      traces.push({
        x: pruned.map((c) => c.steps[c.steps.length - 1]), y: pruned.map((c) => c.values[c.values.length - 1]),
        mode: "markers", name: "stopped by the scheduler", text: pruned.map((c) => `trial ${c.number} · pruned at epoch ${c.steps[c.steps.length - 1]}`),
        customdata: pruned.map((c) => c.number), hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: "x", size: 10, color: STATUS.pruned.color, line: { width: 1, color: "#1a1a1a" } },
      });
    }
    for (const [status] of byStatus(curves.data)) {
      traces.push(legendOnly(styleOf(status).label, { mode: "lines", line: { color: styleOf(status).color, dash: styleOf(status).dash } }));
    }
    if (curves.best_number !== null && curves.data.some((c) => c.number === curves.best_number)) {
      traces.push(legendOnly(`best: trial ${curves.best_number}`, { mode: "lines", line: { color: "#d93025", width: 4 } }));
    }
    const selected = linked.numbers ? linked.numbers.size : null;
    $("#curves-note").textContent = selected !== null
      ? (curves.data.length < selected ? `Showing the best ${curves.data.length} of the ${selected} selected trials.`
        : `Showing the ${curves.data.length} selected trials.`)
      : curves.data.length < curves.total
        ? `Showing ${curves.data.length} of ${curves.total} trials: the best 50, a random sample and every running one.` : "";
    const epochs = Math.max(1, maxEpochs || 0, ...curves.data.map((c) => c.steps.at(-1) ?? 0));
    Plotly.react("plot-curves", traces, baseLayout(`Learning curves (${curves.metric})`, {
      xaxis: { title: { text: "epoch" }, range: [0.7, epochs + 0.3], ...epochTicks(epochs) },
      yaxis: { title: { text: yTitle }, type: yScale("plot-curves", isLossLike(curves.metric)) },
      legend: { orientation: "h", y: -0.28 }, margin: { l: 60, r: 20, t: 50, b: 90 },
    }), plotConfig);
    const live = running.length ? `; ${running.length} running, drawn as far as they have reported` : "";
    const best = curves.data.some((c) => c.number === curves.best_number) ? `; the best, trial ${curves.best_number}, in red` : "";
    describe("plot-curves", `${curves.metric} per epoch of ${curves.data.length} trials (${statusCounts(curves.data) || "none"})${best}${live}.`);
  }

  // The learning rate per epoch of the best trials and a few others: warm-up, decay and
  // restarts as the schedule really ran them (log scale: rates span decades).
  function plotLearningRate(lr) {
    const figure = $("#plot-lr").closest("figure");
    figure.hidden = lr.data.length === 0;
    if (lr.data.length === 0) return;
    const traces = curveTraces(lr, false);
    Plotly.react("plot-lr", traces, baseLayout("Learning rate per epoch", {
      xaxis: { title: { text: "epoch" }, ...epochTicks(Math.max(1, ...lr.data.map((c) => c.steps.length))) },
      yaxis: { title: { text: "learning rate" }, type: yScale("plot-lr", true) },
      showlegend: traces.length <= 15,
    }), plotConfig);
    const rates = lr.data.flatMap((c) => c.values).filter(Number.isFinite);
    describe("plot-lr", `the learning rate per epoch of ${lr.data.length} trials, from ${fmt(Math.min(...rates))} ` +
      `to ${fmt(Math.max(...rates))}.`);
  }

  // Where an absent value (a conditional parameter left out) sits on a parallel-coordinates
  // axis: its own "—" tick below the axis' values, which span [0, 1].
  const ABSENT = -0.12;

  // Readable ticks between lo and hi (real values): a 1-2-5 step on a linear axis, powers
  // of ten on a log one (lo and hi are then log10 values); the ends when nothing fits.
  function niceTicks(lo, hi, log) {
    if (!(hi > lo)) return [log ? 10 ** lo : lo];
    if (log) {
      const ticks = [];
      for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e += 1) ticks.push(10 ** e);
      return ticks.length >= 2 ? ticks : [10 ** lo, ...ticks, 10 ** hi];
    }
    const raw = (hi - lo) / 4;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].find((m) => m * magnitude >= raw) * magnitude;
    const ticks = [];
    for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
      ticks.push(Number((k * step).toPrecision(12)));
    }
    return ticks;
  }

  // A parallel-coordinates axis, its positions in [0, 1]: numbers on their own scale (log
  // for log-scaled parameters, ticked in real values), anything else as categories spread
  // evenly; absent values at their own "—" tick (ABSENT), whatever the axis' kind.
  function dimension(name, values, param) {
    const absent = (v) => v === undefined || v === null;
    const present = values.filter((v) => !absent(v));
    const numeric = present.length > 0 && present.every((v) => typeof v === "number");
    let positions;
    let ticks;
    let log = false;
    if (numeric) {
      log = isLog(param) && present.every((v) => v > 0);
      const scale = (v) => (log ? Math.log10(v) : v);
      const lo = Math.min(...present.map(scale));
      const hi = Math.max(...present.map(scale));
      const unit = (v) => (hi > lo ? (scale(v) - lo) / (hi - lo) : 0.5);
      positions = values.map((v) => (absent(v) ? ABSENT : unit(v)));
      ticks = niceTicks(lo, hi, log).map((v) => [unit(v), fmt(v)]);
    } else {
      const labels = [...new Set(present.map(String))].sort();
      const unit = (i) => (labels.length > 1 ? i / (labels.length - 1) : 0.5);
      positions = values.map((v) => (absent(v) ? ABSENT : unit(labels.indexOf(String(v)))));
      ticks = labels.map((label, i) => [unit(i), label]);
    }
    if (present.length < values.length) ticks.push([ABSENT, "—"]);
    return { name, label: log ? `${name} (log)` : name, log, positions, ticks };
  }

  // Parallel coordinates as SVG lines (one scatter trace per colour band and status,
  // trials separated by gaps): drawn in a few hundred ms anywhere, where Plotly's WebGL
  // parcoords took seconds without a GPU. Dragging along an axis selects the trials whose
  // line crosses it there (`setUpBrushing`); the table and the other plots follow.
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e",
    "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  const UNSELECTED = "#c8c8c8";
  // How far from an axis (in pixels) a drag still starts a range on it.
  const AXIS_GRAB_PX = 16;

  // The study page's linked views. `brushes` maps an axis' name to its selected [low, high]
  // in the axis' own positions ([ABSENT, 1], see `dimension`); `numbers` is the set of
  // selected trials' numbers, or null when no axis has a range (nothing filtered).
  // `trials` and `dimensions` are what the parallel coordinates drew last.
  const linked = { brushes: new Map(), numbers: null, trials: [], dimensions: [], mode: "min",
    onChange: () => {}, onSelectionDrawn: () => {} };

  function selectedNumbers() {
    if (linked.brushes.size === 0) return null;
    const chosen = new Set();
    linked.trials.forEach((t, i) => {
      const inside = linked.dimensions.every((d) => {
        const range = linked.brushes.get(d.name);
        return !range || (d.positions[i] >= range[0] && d.positions[i] <= range[1]);
      });
      if (inside) chosen.add(t.number);
    });
    return chosen;
  }

  // The selected trials, best value first (the study's mode), those without one last.
  function selectedBestFirst() {
    const sign = linked.mode === "max" ? -1 : 1;
    const rank = (t) => (Number.isFinite(t.value) ? sign * t.value : Infinity);
    return linked.trials.filter((t) => linked.numbers?.has(t.number)).sort((a, b) => rank(a) - rank(b) || a.number - b.number);
  }

  // The axes' lines and each axis' selected range, as layout shapes; `dragging` is the
  // range being drawn ({axis, range}).
  function parallelShapes(count, dragging = null) {
    const shapes = [];
    for (let axis = 0; axis < count; axis += 1) {
      shapes.push({ type: "line", x0: axis, x1: axis, y0: 0, y1: 1, line: { color: "#4a4a4a", width: 1 } });
    }
    const ranges = linked.dimensions.map((d, axis) => [axis, linked.brushes.get(d.name)]).filter(([, r]) => r);
    if (dragging) ranges.push([dragging.axis, dragging.range]);
    for (const [axis, [lo, hi]] of ranges) {
      shapes.push({ type: "rect", x0: axis - 0.07, x1: axis + 0.07, y0: lo, y1: hi,
        fillcolor: "rgba(11, 87, 208, 0.2)", line: { color: "#0b57d0", width: 1.5 } });
    }
    return shapes;
  }

  // Brushing: a drag along an axis (within AXIS_GRAB_PX of it) sets that axis' range; a
  // click on the axis clears it. Anywhere else the plot's own click (open a trial) stays.
  // Listening in the capture phase keeps Plotly from also seeing a drag as a click.
  function setUpBrushing(div) {
    if (div.dataset.brushing) return;
    div.dataset.brushing = "on";
    div.addEventListener("mousedown", (event) => {
      const area = div.querySelector(".nsewdrag");
      if (!area || event.button !== 0 || !div.layout?.xaxis?.range) return;
      const box = area.getBoundingClientRect();
      const [x0, x1] = div.layout.xaxis.range;
      const [y0, y1] = div.layout.yaxis.range;
      const toX = (px) => x0 + ((px - box.left) / box.width) * (x1 - x0);
      const toY = (py) => y1 - ((py - box.top) / box.height) * (y1 - y0);
      const axis = Math.round(toX(event.clientX));
      const dimension = linked.dimensions[axis];
      const offAxis = Math.abs(toX(event.clientX) - axis) * (box.width / (x1 - x0)) > AXIS_GRAB_PX;
      if (!dimension || offAxis || event.clientY < box.top || event.clientY > box.bottom) return;
      event.preventDefault();
      event.stopPropagation();
      const clamp = (y) => Math.min(1.02, Math.max(ABSENT - 0.04, y));
      const rangeTo = (py) => {
        const [a, b] = [clamp(toY(event.clientY)), clamp(toY(py))];
        return [Math.min(a, b), Math.max(a, b)];
      };
      const move = (e) => {
        Plotly.relayout(div, { shapes: parallelShapes(linked.dimensions.length, { axis, range: rangeTo(e.clientY) }) });
      };
      const up = (e) => {
        window.removeEventListener("mousemove", move, true);
        window.removeEventListener("mouseup", up, true);
        if (Math.abs(e.clientY - event.clientY) < 4) linked.brushes.delete(dimension.name);
        else linked.brushes.set(dimension.name, rangeTo(e.clientY));
        linked.onChange();
      };
      window.addEventListener("mousemove", move, true);
      window.addEventListener("mouseup", up, true);
    }, true);
  }

  function plotParallel(finished, params, space, metric, bestNumber) {
    const dimensions = params.map((p) => dimension(p, finished.map((t) => t.config[p]), space[p]));
    const objective = finished.map((t) => t.value);
    dimensions.push(dimension(metric, objective, null));
    // Ranges on axes that no longer exist (another study's, a renamed metric) are dropped.
    for (const name of linked.brushes.keys()) {
      if (!dimensions.some((d) => d.name === name)) linked.brushes.delete(name);
    }
    Object.assign(linked, { trials: finished, dimensions });
    linked.numbers = selectedNumbers();
    const [lo, hi] = [Math.min(...objective), Math.max(...objective)];
    // The colour bar's title stands to its right, clear of its tick labels.
    const colorbar = { title: { text: metric, side: "right" }, thickness: 14, tickformat: ".3~g" };
    const band = (v) => (hi > lo ? Math.min(VIRIDIS.length - 1, Math.floor(((v - lo) / (hi - lo)) * VIRIDIS.length)) : 0);
    // One trace per colour band and status: the colour is the value, the dash the status.
    // Trials outside a selection are one grey trace, drawn first (underneath).
    const bands = new Map([["unselected", { type: "scatter", mode: "lines", x: [], y: [], text: [], customdata: [],
      hoverinfo: "text", showlegend: false, opacity: 0.5, line: { color: UNSELECTED, width: 1 } }]]);
    finished.forEach((t, i) => {
      const selected = !linked.numbers || linked.numbers.has(t.number);
      const key = selected ? `${band(t.value)}:${t.status}` : "unselected";
      if (!bands.has(key)) {
        bands.set(key, { type: "scatter", mode: "lines", x: [], y: [], text: [], customdata: [],
          hoverinfo: "text", showlegend: false, opacity: 0.6,
          line: { color: VIRIDIS[band(t.value)], width: t.status === "completed" ? 1.2 : 1.5, dash: styleOf(t.status).dash } });
      }
      const trace = bands.get(key);
      dimensions.forEach((d, axis) => {
        trace.x.push(axis);
        trace.y.push(d.positions[i]);
        trace.text.push(`${trialText(t)}: ${metric} ${fmt(t.value)}`);
        trace.customdata.push(t.number);
      });
      trace.x.push(null);
      trace.y.push(null);
      trace.text.push(null);
      trace.customdata.push(null);
    });
    const traces = [...bands.values()].filter((t) => t.x.length > 0);
    for (const [status] of byStatus(finished)) {
      traces.push(legendOnly(styleOf(status).label, { mode: "lines", line: { color: "#4a4a4a", dash: styleOf(status).dash } }));
    }
    if (linked.numbers) traces.push(legendOnly("not selected", { mode: "lines", line: { color: UNSELECTED, width: 3 } }));
    const bestIndex = finished.findIndex((t) => t.number === bestNumber);
    if (bestIndex >= 0 && (!linked.numbers || linked.numbers.has(bestNumber))) {
      traces.push({ type: "scatter", mode: "lines+markers", name: `best: trial ${bestNumber}`,
        x: dimensions.map((_, axis) => axis), y: dimensions.map((d) => d.positions[bestIndex]),
        customdata: dimensions.map(() => bestNumber),
        line: { color: "#d93025", width: 3 }, hoverinfo: "name", showlegend: true });
    }
    // The colour bar, on a trace with no visible points.
    traces.push({ type: "scatter", mode: "markers", x: [null, null], y: [null, null], hoverinfo: "skip",
      showlegend: false, marker: { color: [lo, hi], cmin: lo, cmax: hi, colorscale: "Viridis",
        showscale: true, colorbar } });
    const annotations = [];
    dimensions.forEach((d, axis) => {
      annotations.push({ x: axis, y: 1.04, yanchor: "bottom", text: `<b>${d.label}</b>`, showarrow: false });
      for (const [at, label] of d.ticks) {
        annotations.push({ x: axis, y: at, xanchor: "right", xshift: -4, text: label, showarrow: false,
          font: { size: 11, color: "#4a4a4a" } });
      }
    });
    const div = $("#plot-parallel");
    Plotly.react(div, traces, baseLayout("Parallel coordinates", {
      margin: { l: 60, r: 80, t: 80, b: 30 },
      showlegend: true, legend: { orientation: "h", y: -0.02, yanchor: "top" }, hovermode: "closest", annotations,
      shapes: parallelShapes(dimensions.length),
      xaxis: { range: [-0.5, dimensions.length - 0.7], visible: false, fixedrange: true },
      yaxis: { range: [ABSENT - 0.06, 1.12], visible: false, fixedrange: true },
    }), plotConfig);
    setUpBrushing(div);
    const ranges = dimensions.filter((d) => linked.brushes.has(d.name)).map((d) => d.name);
    describe("plot-parallel", `${finished.length} trials (${statusCounts(finished)}) across ` +
      `${listed(dimensions.map((d) => d.label))}, coloured by ${metric}` +
      (linked.numbers ? `; ${linked.numbers.size} selected by ranges on ${listed(ranges)}.` : "; drag along an axis to select trials."));
  }

  // A contour axis: positions in [0, 1] (log10 for log-scaled parameters, categories
  // spread evenly), with the Plotly axis that shows them in real values.
  function contourAxis(name, values, param) {
    const numeric = values.every((v) => typeof v === "number");
    if (!numeric) {
      const labels = [...new Set(values.map(String))].sort();
      const at = (v) => labels.indexOf(String(v));
      const span = Math.max(labels.length - 1, 1);
      return { name, unit: (v) => at(v) / span, grid: (u) => u * span, plotted: at,
        axis: { title: { text: name }, tickvals: labels.map((_, i) => i), ticktext: labels, range: [-0.3, span + 0.3] } };
    }
    const log = isLog(param) && values.every((v) => v > 0);
    const scale = (v) => (log ? Math.log10(v) : v);
    let lo = Math.min(...values.map(scale));
    let hi = Math.max(...values.map(scale));
    if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
    return { name, unit: (v) => (scale(v) - lo) / (hi - lo), plotted: (v) => v,
      grid: (u) => (log ? 10 ** (lo + u * (hi - lo)) : lo + u * (hi - lo)),
      axis: { title: { text: log ? `${name} (log)` : name }, type: log ? "log" : "linear", exponentformat: "e",
        ...(log ? LOG_TICKS : {}) } };
  }

  const CONTOUR_GRID = 30;
  // Log axes of parameters: powers of ten labelled, 2 and 5 between them, not every digit.
  const LOG_TICKS = { dtick: "D2" };

  // The value between trials by inverse-distance weighting (power 2) in the axes' [0, 1]
  // positions: exact at a trial, a weighted mean elsewhere. A guide to where good values
  // lie, not a model of the objective.
  function interpolate(points, u, v) {
    let weights = 0;
    let total = 0;
    for (const p of points) {
      const d2 = (p.u - u) ** 2 + (p.v - v) ** 2;
      if (d2 < 1e-12) return p.value;
      weights += 1 / d2;
      total += p.value / d2;
    }
    return total / weights;
  }

  // The value over two parameters the user picks: the colour interpolated between the
  // completed trials where both are set (conditional parameters: only trials where both
  // are active), each trial a marker in its status' style that opens it.
  function plotContour(trials, params, space, metric) {
    const [px, py] = [$("#contour-x").value, $("#contour-y").value];
    const both = trials.filter((t) => px in t.config && py in t.config && Number.isFinite(t.value));
    const x = contourAxis(px, both.map((t) => t.config[px]), space[px]);
    const y = contourAxis(py, both.map((t) => t.config[py]), space[py]);
    // Pruned trials' values are from the epoch they were stopped at: used only when fewer
    // than 3 completed trials would leave no surface to speak of.
    let surface = both.filter((t) => t.status === "completed");
    let from = "completed";
    if (surface.length < 3 && both.some((t) => t.status === "pruned")) {
      surface = both.filter((t) => t.status === "completed" || t.status === "pruned");
      from = "completed and pruned";
    }
    const points = surface.map((t) => ({ u: x.unit(t.config[px]), v: y.unit(t.config[py]), value: t.value }));
    const steps = [...Array(CONTOUR_GRID).keys()].map((i) => i / (CONTOUR_GRID - 1));
    const traces = [];
    if (points.length >= 2 && px !== py) {
      traces.push({ type: "contour", x: steps.map(x.grid), y: steps.map(y.grid),
        z: steps.map((v) => steps.map((u) => interpolate(points, u, v))),
        colorscale: "Viridis", ncontours: 12, line: { smoothing: 0.8, width: 0.5 }, hoverinfo: "skip",
        colorbar: { title: { text: metric, side: "right" }, thickness: 14, tickformat: ".3~g" } });
    }
    for (const [status, rows] of byStatus(both)) {
      const style = styleOf(status);
      traces.push({ type: "scatter", mode: "markers", name: style.label,
        x: rows.map((t) => x.plotted(t.config[px])), y: rows.map((t) => y.plotted(t.config[py])),
        customdata: rows.map((t) => t.number), text: rows.map((t) => `${trialText(t)}: ${fmt(t.value)}`),
        hovertemplate: `%{text}<br>${px} %{x}<br>${py} %{y}<extra></extra>`,
        marker: { color: style.color, symbol: style.symbol, size: 9, line: { color: "#fff", width: 1 } } });
    }
    Plotly.react("plot-contour", traces, baseLayout(`${metric} over ${px} and ${py}`, {
      xaxis: x.axis, yaxis: { ...y.axis, automargin: true }, hovermode: "closest",
      legend: { orientation: "h", y: -0.25 }, margin: { l: 70, r: 20, t: 50, b: 90 },
    }), plotConfig);
    $("#contour-note").textContent = traces[0]?.type === "contour"
      ? `Colour: ${metric}, interpolated (inverse-distance weighted) between the ${points.length} ${from} ` +
        `trials that set both ${px} and ${py}; a guide between trials, not a model. Markers are the trials.`
      : `Too few trials set both ${px} and ${py} to colour the plane: the markers are the trials.`;
    describe("plot-contour", `${metric} over ${x.axis.title.text} and ${y.axis.title.text}, ` +
      `${both.length} trials that set both (${statusCounts(both) || "none"})` +
      (points.length >= 2 ? `, interpolated between the ${points.length} ${from} ones.` : "."));
  }

  // The contour's two parameters: the first two searched ones until the user picks.
  function setUpContour(params, redraw) {
    const figure = $("#contour-figure");
    figure.hidden = params.length < 2;
    if (params.length < 2 || $("#contour-x").options.length > 0) return;
    for (const [select, initial] of [[$("#contour-x"), params[0]], [$("#contour-y"), params[1]]]) {
      select.replaceChildren(...params.map((p) => h("option", { value: p, selected: p === initial }, p)));
      select.addEventListener("change", redraw);
    }
  }

  function plotImportance(importance) {
    const names = Object.keys(importance.importances);
    const figure = $("#plot-importance").closest("figure");
    if (names.length === 0) {
      $("#importance-note").textContent = `Hyperparameter importance: ${importance.reason}.`;
      Plotly.purge("plot-importance");
      $("#plot-importance").hidden = true;
      figure.hidden = false;
      return;
    }
    $("#plot-importance").hidden = false;
    const c = importance.counts || {};
    $("#importance-note").textContent =
      `${importance.method} over ${importance.n_trials} finished trials (${c.completed ?? 0} completed, ` +
      `${c.pruned ?? 0} pruned: a pruned trial's value is from the epoch it was stopped at): which ` +
      "parameters a forest used to predict the objective, not a causal effect.";
    Plotly.react("plot-importance", [{
      type: "bar", orientation: "h", x: names.map((n) => importance.importances[n]).reverse(),
      y: [...names].reverse(), marker: { color: "#1a73e8" },
    }], baseLayout("Hyperparameter importance", {
      xaxis: { title: { text: "importance" } }, yaxis: { automargin: true },
    }), plotConfig);
    describe("plot-importance", `${names.map((n) => `${n} ${fmt(importance.importances[n])}`).join(", ")} ` +
      `(a random forest over ${importance.n_trials} finished trials).`);
  }

  // The empirical distribution (ECDF) of the value of completed and of pruned trials:
  // how many configurations reach a given value, and how far pruned ones fell behind.
  function plotDistribution(points, metric) {
    const traces = byStatus(points.filter((t) => t.status === "completed" || t.status === "pruned"))
      .map(([status, rows]) => {
        const values = rows.map((t) => t.value).sort((a, b) => a - b);
        return { x: values, y: values.map((_, i) => (i + 1) / values.length), mode: "lines",
          name: `${styleOf(status).label} (${values.length})`, hovertemplate: "%{y:.0%} ≤ %{x}<extra></extra>",
          line: { shape: "hv", color: styleOf(status).color, dash: styleOf(status).dash, width: 2 } };
      });
    Plotly.react("plot-ecdf", traces, baseLayout("Distribution of the value", {
      xaxis: { title: { text: metric } },
      yaxis: { title: { text: "fraction of trials ≤ value" }, range: [0, 1.02], tickformat: ".0%" },
      legend: { orientation: "h", y: -0.28 }, margin: { l: 60, r: 20, t: 50, b: 90 },
    }), plotConfig);
    describe("plot-ecdf", traces.length === 0 ? "no finished trial has a value." : "the fraction of trials at or below " +
      `each ${metric}: ` + traces.map((t) => `${t.name} from ${fmt(t.x[0])} to ${fmt(t.x.at(-1))}`).join("; ") + ".");
  }

  function plotSlices(finished, params, space, metric) {
    const n = Math.max(params.length, 1);
    const layout = baseLayout("Slice plot", {
      grid: { rows: 1, columns: n, pattern: "independent" }, showlegend: true,
      legend: { orientation: "h", y: -0.25 }, margin: { l: 60, r: 20, t: 50, b: 90 },
    });
    // One trace per parameter and status; the legend lists each status once.
    const shownInLegend = new Set();
    const traces = params.flatMap((p, i) => {
      const axis = i === 0 ? "" : String(i + 1);
      // Log axes ticked "1e-4", not Plotly's SI "100μ".
      layout[`xaxis${axis}`] = { title: { text: p }, type: isLog(space[p]) ? "log" : undefined, exponentformat: "e",
        automargin: true, ...(isLog(space[p]) ? LOG_TICKS : {}) };
      layout[`yaxis${axis}`] = i === 0 ? { title: { text: metric } } : {};
      return byStatus(finished.filter((t) => p in t.config)).map(([status, rows]) => {
        const style = styleOf(status);
        const first = !shownInLegend.has(status);
        shownInLegend.add(status);
        return {
          x: rows.map((t) => (typeof t.config[p] === "number" ? t.config[p] : String(t.config[p]))),
          y: rows.map((t) => t.value), mode: "markers", type: "scatter", name: style.label,
          legendgroup: status, showlegend: first, xaxis: `x${axis}`, yaxis: `y${axis}`,
          marker: { color: style.color, symbol: style.symbol, size: 8, opacity: 0.8 },
          customdata: rows.map((t) => t.number), text: rows.map(trialText),
          hovertemplate: `%{text}<br>${p} %{x}<br>%{y}<extra></extra>`,
        };
      });
    });
    Plotly.react("plot-slice", traces, layout, plotConfig);
    describe("plot-slice", `${metric} against each of ${listed(params)}, one panel each, for ` +
      `${finished.length} trials (${statusCounts(finished) || "none"}).`);
  }

  // --- one trial ---------------------------------------------------------------------------

  function groupMetrics(history) {
    const names = [...new Set(history.flatMap((p) => Object.keys(p.values)))].filter((n) => n !== "epoch");
    const groups = { loss: [], accuracy: [], lr: [], other: [] };
    for (const name of names) {
      if (/loss/i.test(name)) groups.loss.push(name);
      else if (/acc/i.test(name)) groups.accuracy.push(name);
      else if (/^lr$|learning_rate/i.test(name)) groups.lr.push(name);
      else groups.other.push(name);
    }
    return groups;
  }

  const metricTrace = (history, name, label) => ({
    x: history.map((p) => p.step), y: history.map((p) => p.values[name] ?? null),
    mode: "lines+markers", name: label || name,
  });

  // Why a pruned trial got no more epochs, in words, from the study's scheduler; null for
  // any other trial.
  function whyStopped(trial, study) {
    if (trial.status !== "pruned") return null;
    const budget = study.spec.budget?.max_epochs;
    const at = `at epoch ${trial.epochs_run}${budget ? ` of ${budget}` : ""}`;
    // The scheduler's own words with its numbers ("stopped by ASHA at the rung of epoch
    // 3: val_loss 0.81 above the rung's cut-off 0.42 …"), where it gave them.
    if (trial.error?.startsWith("stopped by ")) return `S${trial.error.slice(1)}; ${at}.`;
    if (trial.error) return `Stopped ${at}: ${trial.error}.`;
    const scheduler = study.strategy.scheduler || "the scheduler";
    const eta = study.spec.strategy?.reduction_factor;
    const metric = study.objective.metric;
    const rule = {
      asha: `its ${metric} at that rung was not in the best 1/${fmt(eta ?? 3)} of the trials that reached it`,
      hyperband: `its ${metric} at that rung was not in the best 1/${fmt(eta ?? 3)} of the trials that reached it`,
      median: `its ${metric} was worse than the median of the other trials at that epoch`,
    }[scheduler];
    return `Stopped early by the ${scheduler.toUpperCase()} scheduler ${at}` + (rule ? `: ${rule}.` : ".");
  }

  async function trialPage() {
    const { studyId, number } = PAGE;
    const [trial, study] = await Promise.all([
      api(`/studies/${studyId}/trials/${number}`), api(`/studies/${studyId}`)]);
    const stopped = whyStopped(trial, study);
    $("#trial-stopped").hidden = !stopped;
    $("#trial-stopped").textContent = stopped || "";
    $("#trial-status").replaceChildren(statusBadge(trial.status),
      ` ${trial.epochs_run} epochs · value ${fmt(trial.value)} · best epoch ${fmt(trial.best_value)} · last ${fmt(trial.last_value)}`);
    if (trial.error && trial.status !== "pruned") {  // a pruned trial's says why it stopped
      $("#trial-error").hidden = false;
      $("#trial-error").textContent = trial.error;
    }
    kvTable($("#config tbody"), Object.entries(trial.config));
    kvTable($("#provenance tbody"), [["seed", trial.seed], ["started", when(trial.started_at)],
      ["finished", when(trial.finished_at)], ...Object.entries(trial.provenance)]);
    // The driver names trials by their Ray key in its messages: say the trial's number.
    const message = (e) => (e.trial_id === trial.id ? e.message.replace(/^trial \S+/, `trial ${trial.number}`) : e.message);
    $("#events").replaceChildren(...trial.events.map((e) => h("li", {},
      h("time", { datetime: e.created_at }, when(e.created_at)), " ", statusBadge(e.kind.replace(/^trial_/, "")),
      " ", message(e))));
    $("#events-empty").hidden = trial.events.length > 0;
    const groups = groupMetrics(trial.history);
    if (trial.history.length > 0) await plotly();
    $("#epochs-empty").hidden = trial.history.length > 0;
    const titles = { loss: "Losses", accuracy: "Accuracy", lr: "Learning rate", other: "Other metrics" };
    // A pruned trial's plots mark the epoch it was stopped at.
    const stopLine = stopped ? [{ type: "line", xref: "x", yref: "paper", x0: trial.epochs_run, x1: trial.epochs_run,
      y0: 0, y1: 1, line: { color: STATUS.pruned.color, dash: "dot", width: 2 } }] : [];
    const stopNote = stopped ? [{ xref: "x", yref: "paper", x: trial.epochs_run, y: 1, yanchor: "bottom",
      text: "stopped", showarrow: false, font: { color: "#7a5300" } }] : [];
    const named = (names) => (names.length <= 2 ? names.join(", ") : "value (see legend)");
    const axisTitles = { loss: (n) => (n.length === 1 ? n[0] : "loss"), accuracy: (n) => (n.length === 1 ? n[0] : "accuracy"),
      lr: () => "learning rate", other: named };
    for (const [group, names] of Object.entries(groups)) {
      const div = $(`#plot-${group}`);
      div.closest("figure").hidden = names.length === 0;
      if (names.length === 0) continue;
      const switchable = group === "loss" || group === "lr";
      Plotly.newPlot(div, names.map((n) => metricTrace(trial.history, n)),
        baseLayout(titles[group], {
          shapes: stopLine, annotations: stopNote,
          xaxis: { title: { text: "epoch" }, ...epochTicks(trial.history.length) },
          yaxis: { title: { text: axisTitles[group](names) }, ...(switchable ? { type: yScale(div.id, true) } : {}) },
        }), plotConfig);
        describe(div.id, `${listed(names)} at each of the trial's ${trial.history.length} epochs` +
          (stopped ? `; stopped at epoch ${trial.epochs_run}.` : "."));
    }
  }

  // --- compare -----------------------------------------------------------------------------

  async function comparePage() {
    const { studyId, numbers } = PAGE;
    const [study, ...trials] = await Promise.all([
      api(`/studies/${studyId}`), ...numbers.map((n) => api(`/studies/${studyId}/trials/${n}`)),
    ]);
    $("#compare thead tr").replaceChildren(h("th", { scope: "col" }, "Field"),
      ...trials.map((t) => h("th", { scope: "col" }, h("a", { href: `/studies/${studyId}/trials/${t.number}` }, `Trial ${t.number}`))));
    const keys = [...new Set(trials.flatMap((t) => Object.keys(t.config)))];
    const metricKeys = [...new Set(trials.flatMap((t) => Object.keys(t.final_metrics)))];
    const rows = [
      ["status", (t) => t.status], ["epochs", (t) => t.epochs_run],
      [valueLabel(study), (t) => t.value], [`${study.objective.metric} (best epoch)`, (t) => t.best_value],
      ...keys.map((k) => [k, (t) => t.config[k]]),
      ...metricKeys.map((k) => [`final ${k}`, (t) => t.final_metrics[k]]),
    ];
    $("#compare tbody").replaceChildren(...rows.map(([label, get]) => {
      const values = trials.map(get);
      const differs = new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1;
      return h("tr", { class: differs ? "differs" : null, "data-field": label },
        h("th", { scope: "row" }, label), ...values.map((v) => h("td", {}, fmt(v))));
    }));
    const metric = study.objective.metric;
    await plotly();
    // Each line dashed by its trial's status, as everywhere; whole epochs on the axis.
    const lines = trials.map((t) => ({ ...metricTrace(t.history, metric, `trial ${t.number} (${t.status})`),
      line: { dash: styleOf(t.status).dash } }));
    const epochs = Math.max(1, ...trials.map((t) => t.history.length));
    Plotly.newPlot("plot-compare", lines, baseLayout(`${metric} per epoch`, {
      xaxis: { title: { text: "epoch" }, ...epochTicks(epochs) }, yaxis: { title: { text: metric } },
    }), plotConfig);
    describe("plot-compare", `${metric} per epoch of trials ${listed(trials.map((t) => String(t.number)))}, ` +
      `one line each (${trials.map((t) => `trial ${t.number}: ${t.history.length} epochs`).join(", ")}).`);
  }

  // --- start -------------------------------------------------------------------------------

  const PAGES = { studies: studiesPage, study: studyPage, trial: trialPage, compare: comparePage };
  const run = () => {
    const page = PAGES[PAGE.page];
    if (page) page().catch(showFailure);
  };
  if (PAGE.auth && PAGE.page !== "error") {
    setUpLogin(run);
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      showLogin();
      return;
    }
    $("#logout").hidden = false;
  }
  run();
})();
