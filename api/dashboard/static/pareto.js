// The Pareto front of a multi-objective study, on its study page: a scatter of every
// completed trial's first two objectives with the front highlighted, and the table of the
// Pareto set. Self-contained beside dashboard.js (same API, same token); it shows its
// section only when the study has two or more objectives.
"use strict";
(() => {
  const PAGE = JSON.parse(document.getElementById("page-data").textContent);
  const API = "/api/v1";
  const MAX_POINTS = 5000; // completed trials drawn; the front itself is always complete
  const PAGE_SIZE = 500;
  const section = document.getElementById("pareto");
  if (!section || PAGE.studyId === undefined) return;

  async function api(path) {
    const token = sessionStorage.getItem("hpo-token");
    const response = await fetch(API + path, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
    return String(v);
  }

  function cell(tag, text, attrs = {}) {
    const el = document.createElement(tag);
    el.textContent = text; // text only: names and values come from users
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  }

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PAGE.plotlyUrl;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("cannot load Plotly"));
      document.head.append(script);
    });
  }

  async function completedValues(studyId) {
    const values = [];
    for (let offset = 0; offset < MAX_POINTS; offset += PAGE_SIZE) {
      const page = await api(
        `/studies/${studyId}/trials?status=completed&limit=${PAGE_SIZE}&offset=${offset}`);
      for (const t of page.data) {
        if (Array.isArray(t.values) && t.values.every((v) => typeof v === "number")) {
          values.push({ number: t.number, values: t.values });
        }
      }
      if (offset + PAGE_SIZE >= page.count) break;
    }
    return values;
  }

  function renderTable(pareto) {
    const head = section.querySelector("#pareto-table thead tr");
    const body = section.querySelector("#pareto-table tbody");
    head.replaceChildren(
      cell("th", "#", { scope: "col" }),
      ...pareto.objectives.map((o) => cell("th", `${o.metric} (${o.mode})`, { scope: "col" })),
      ...pareto.params.map((p) => cell("th", p, { scope: "col" })));
    body.replaceChildren(...pareto.pareto.map((t) => {
      const row = document.createElement("tr");
      const link = cell("a", String(t.number), {
        href: `/studies/${pareto.study_id}/trials/${t.number}` });
      const first = document.createElement("td");
      first.append(link);
      row.append(first, ...(t.values || []).map((v) => cell("td", fmt(v))),
        ...pareto.params.map((p) => cell("td", fmt(t.config[p]))));
      return row;
    }));
  }

  async function renderPlot(pareto) {
    const [x, y] = pareto.objectives;
    const points = await completedValues(pareto.study_id);
    const front = pareto.pareto
      .filter((t) => Array.isArray(t.values))
      .sort((a, b) => a.values[0] - b.values[0]);
    const note = section.querySelector("#pareto-note");
    note.textContent = pareto.objectives.length > 2
      ? `${pareto.objectives.length} objectives: the plot shows the first two; ` +
        "the front is non-dominated on all of them, so some of its points may look dominated here."
      : "";
    const Plotly = await loadPlotly();
    // Named for screen readers by what is drawn, as every plot of the page is.
    document.getElementById("plot-pareto").setAttribute("aria-label",
      `Pareto front: ${front.length} of ${points.length} completed trials on the front, ` +
      `${x.metric} (${x.mode}) against ${y.metric} (${y.mode})`);
    Plotly.newPlot("plot-pareto", [
      {
        x: points.map((p) => p.values[0]), y: points.map((p) => p.values[1]),
        text: points.map((p) => `trial ${p.number}`), mode: "markers", type: "scatter",
        name: "completed trials", marker: { color: "#9aa5b1", size: 7 },
      },
      {
        x: front.map((t) => t.values[0]), y: front.map((t) => t.values[1]),
        text: front.map((t) => `trial ${t.number}`), mode: "lines+markers", type: "scatter",
        // The staircase bounds what the front dominates: seen along increasing x, a
        // minimized x steps across then up or down, a maximized x steps up or down first.
        name: "Pareto front", line: { shape: x.mode === "min" ? "hv" : "vh", color: "#d9480f" },
        marker: { color: "#d9480f", size: 10 },
      },
    ], {
      margin: { t: 30, r: 10 },
      xaxis: { title: { text: `${x.metric} (${x.mode})` } },
      yaxis: { title: { text: `${y.metric} (${y.mode})` } },
      legend: { orientation: "h" },
    }, { responsive: true, displaylogo: false });
  }

  async function run() {
    const pareto = await api(`/studies/${PAGE.studyId}/pareto`);
    if (pareto.objectives.length < 2) return;
    section.hidden = false;
    const empty = section.querySelector("#pareto-empty");
    empty.hidden = pareto.pareto.length > 0;
    renderTable(pareto);
    if (pareto.pareto.length > 0) await renderPlot(pareto);
  }

  run().catch((error) => {
    const empty = section.querySelector("#pareto-empty");
    if (empty) empty.textContent = `The Pareto front could not be loaded: ${error.message}`;
  });
})();
