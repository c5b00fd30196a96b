// The live line page: draws each state document pushed on /events (see ../README.md for its shape).
// Every figure sits in an element with a data-testid; its data-value holds the number exactly as the
// server sent it, the text holds it formatted for the screen (the browser test checks both).
"use strict";

(function () {
  const STATES = [
    ["PRODUCING", "producing"], ["SETUP", "setup"], ["DOWN", "down"], ["STARVED", "starved"],
    ["BLOCKED", "blocked"], ["IDLE", "idle"], ["PLANNED_STOP", "planned stop"], ["NO_SHIFT", "no shift"],
    ["UNKNOWN", "no data"],
  ];
  // ISO 22400-2 time elements, in the order the loss bars stack them
  const ELEMENTS = [
    ["apt_s", "producing (APT)", "producing"], ["asut_s", "setup (ASUT)", "setup"],
    ["adet_s", "delays, down (ADET)", "down"], ["adot_s", "idle, starved, blocked (ADOT)", "idle"],
    ["unknown_s", "no data", "unknown"],
  ];
  const APQ = [["availability", "A"], ["performance", "P"], ["quality", "Q"]];
  const STALE_AFTER_MS = 3000;
  const POWER_POINTS = 600; // about five minutes of pushes at 0.5 s

  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  // --- number formats (mirrored by the browser test) ---------------------------------------------
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const fmtPct = (v) => (isNum(v) ? (v * 100).toFixed(1) + " %" : "-");
  const fmt1 = (v) => (isNum(v) ? v.toFixed(1) : "-");
  const fmtInt = (v) => (isNum(v) ? String(Math.round(v)) : "-");
  const fmtMin = (s) => (isNum(s) ? (s / 60).toFixed(0) + " min" : "-");
  // times in the plant's zone when the document names it (the screen may be set to another), else the browser's
  let timeZone;
  function fmtClock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "-";
    const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    try {
      return d.toLocaleTimeString("en-GB", { ...opts, timeZone });
    } catch (err) { // an unknown zone name: RangeError
      return d.toLocaleTimeString("en-GB", opts);
    }
  }
  const fmtHm = (iso) => fmtClock(iso).slice(0, 5);

  function show(el, value, text) {
    if (!el) return;
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    if (el.textContent !== text) el.textContent = text;
  }
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") el.className = v;
      else if (k === "testid") el.dataset.testid = v;
      else el.setAttribute(k, v);
    }
    for (const c of children) el.append(c);
    return el;
  }
  const key = (line, station) => `${line}-${station}`;

  // --- legends -----------------------------------------------------------------------------------
  for (const [name, label] of STATES) {
    $("state-legend").append(h("li", {}, h("span", { class: `swatch st-${name}` }), label));
  }
  for (const [, label, cls] of ELEMENTS) {
    $("loss-legend").append(h("li", {}, h("span", { class: `swatch el-${cls}` }), label));
  }

  // --- the line flow -------------------------------------------------------------------------------
  let layout = ""; // the lines and stations the DOM was built for

  function buildLines(doc) {
    const root = $("lines");
    root.replaceChildren();
    const losses = $("losses");
    losses.replaceChildren();
    for (const line of doc.lines || []) {
      const head = h("div", { class: "line-head" },
        h("span", { class: "line-name" }, line.line),
        h("span", { class: "line-fig" }, "OEE ", h("b", { testid: `line-oee-${line.line}` }, "-")),
        h("span", { class: "line-fig" }, "good ", h("b", { testid: `line-good-${line.line}` }, "-")),
        h("span", { class: "line-fig bn" }, "bottleneck ", h("b", { testid: `bottleneck-${line.line}` }, "-")));
      const flow = h("div", { class: "flow" });
      for (const st of line.stations || []) {
        const k = key(line.line, st.station);
        // a station and the buffer after it stay together when the row wraps on a narrow screen
        const stage = h("div", { class: "stage" });
        flow.append(stage);
        stage.append(h("div", { class: "station", testid: `station-${k}` },
          h("div", { class: "bn-flag" }, "bottleneck"),
          h("div", { class: "st-name", title: st.station }, st.station),
          h("div", { class: "st-state", testid: `state-${k}` }, "-"),
          h("div", { class: "st-oee" }, h("span", { class: "big", testid: `oee-${k}` }, "-"), h("span", { class: "lbl" }, "OEE")),
          // one labelled figure a row: side by side they ran together ("85.0 %92.1 %99.0 %")
          h("div", { class: "st-apq" },
            ...APQ.map(([name, letter]) => h("div", { class: "apq", title: name },
              h("span", { class: "k" }, letter), " ", h("b", { testid: `${name}-${k}` }, "-")))),
          h("div", { class: "st-meta" },
            h("span", {}, h("b", { testid: `power-${k}` }, "-"), " kW"),
            h("span", {}, h("b", { testid: `good-${k}` }, "-"), " good"))));
        if (st.buffer_capacity) {
          stage.append(h("div", { class: "buffer", title: `buffer after ${st.station}` },
            h("div", { class: "tank" }, h("div", { class: "level", testid: `buffer-fill-${k}` })),
            h("div", { class: "buf-num" }, h("b", { testid: `buffer-${k}` }, "-"),
              h("span", {}, "of ", h("span", { testid: `buffer-capacity-${k}` }, "-")))));
        } else {
          stage.append(h("div", { class: "arrow" }, "\u2192"));
        }
        const bar = h("div", { class: "bar", testid: `loss-bar-${k}` });
        for (const [el, label, cls] of ELEMENTS) {
          bar.append(h("div", { class: `seg el-${cls}`, testid: `loss-${k}-${el.slice(0, -2)}`, title: label }));
        }
        losses.append(h("div", { class: "loss-row" },
          h("div", { class: "loss-name" }, `${line.line} / ${st.station}`), bar,
          h("div", { class: "loss-total" }, "lost ", h("b", { testid: `loss-total-${k}` }, "-"))));
      }
      root.append(h("div", { class: "line" }, head, flow));
    }
  }

  function drawLines(doc) {
    const shape = JSON.stringify((doc.lines || []).map((l) => [l.line, (l.stations || []).map((s) => [s.station, !!s.buffer_capacity])]));
    if (shape !== layout) {
      buildLines(doc);
      layout = shape;
    }
    let longest = 0;
    for (const line of doc.lines || []) {
      for (const st of line.stations || []) {
        const kpi = st.kpi || {};
        longest = Math.max(longest, ELEMENTS.reduce((a, [el]) => a + (kpi[el] || 0), 0));
      }
    }
    for (const line of doc.lines || []) {
      const lk = line.kpi || {};
      show($(`line-oee-${line.line}`), lk.oee, fmtPct(lk.oee));
      show($(`line-good-${line.line}`), lk.good, fmtInt(lk.good));
      show($(`bottleneck-${line.line}`), line.bottleneck, line.bottleneck || "-");
      for (const st of line.stations || []) {
        const k = key(line.line, st.station);
        const kpi = st.kpi || {};
        const card = $(`station-${k}`);
        const state = STATES.some(([n]) => n === st.state) ? st.state : "UNKNOWN";
        card.className = `station st-${state}` + (line.bottleneck === st.station ? " is-bottleneck" : "");
        show($(`state-${k}`), st.state, (STATES.find(([n]) => n === state) || ["", "no data"])[1]);
        show($(`oee-${k}`), kpi.oee, fmtPct(kpi.oee));
        show($(`availability-${k}`), kpi.availability, fmtPct(kpi.availability));
        show($(`performance-${k}`), kpi.performance, fmtPct(kpi.performance));
        show($(`quality-${k}`), kpi.quality, fmtPct(kpi.quality));
        show($(`power-${k}`), st.power_kw, fmt1(st.power_kw));
        show($(`good-${k}`), kpi.good, fmtInt(kpi.good));
        if (st.buffer_capacity) {
          show($(`buffer-${k}`), st.buffer_after, fmtInt(st.buffer_after));
          show($(`buffer-capacity-${k}`), st.buffer_capacity, fmtInt(st.buffer_capacity));
          const frac = isNum(st.buffer_after) ? Math.min(1, Math.max(0, st.buffer_after / st.buffer_capacity)) : 0;
          const fill = $(`buffer-fill-${k}`);
          fill.style.height = `${(frac * 100).toFixed(1)}%`;
          fill.classList.toggle("full", frac >= 1);
          fill.classList.toggle("empty", frac <= 0);
        }
        let lost = 0;
        for (const [el] of ELEMENTS) {
          const seg = $(`loss-${k}-${el.slice(0, -2)}`);
          const s = isNum(kpi[el]) ? kpi[el] : 0;
          if (el !== "apt_s") lost += s;
          show(seg, kpi[el], s >= 60 && longest > 0 && s / longest > 0.07 ? fmtMin(s) : "");
          seg.style.width = longest > 0 ? `${((100 * s) / longest).toFixed(3)}%` : "0%";
          seg.title = `${ELEMENTS.find(([e]) => e === el)[1]}: ${fmtMin(s)}`;
        }
        show($(`loss-total-${k}`), lost, fmtMin(lost));
      }
    }
  }

  // --- output, energy, alarms ----------------------------------------------------------------------
  function drawOutput(doc) {
    const shift = doc.shift || {};
    const site = doc.site_kpi || {};
    const fc = shift.forecast || null;
    show($("site"), doc.site, doc.site || "-");
    show($("shift-name"), shift.name, shift.name || "-");
    show($("shift-span"), shift.start, shift.start ? `${fmtHm(shift.start)}\u2013${fmtHm(shift.end)}` : "");
    show($("shift-good"), site.good, fmtInt(site.good));
    show($("shift-plan"), shift.plan_good, fmtInt(shift.plan_good));
    show($("forecast-good"), fc ? fc.expected_good : null, fmtInt(fc ? fc.expected_good : null));
    show($("forecast-oee"), fc ? fc.oee : null, fmtPct(fc ? fc.oee : null));
    show($("forecast-energy"), fc ? fc.energy_kwh : null, fmt1(fc ? fc.energy_kwh : null));
    show($("site-oee"), site.oee, fmtPct(site.oee));
    show($("site-availability"), site.availability, fmtPct(site.availability));
    show($("site-performance"), site.performance, fmtPct(site.performance));
    show($("site-quality"), site.quality, fmtPct(site.quality));
    show($("site-produced"), site.produced, fmtInt(site.produced));
    show($("site-scrap"), site.scrap, fmtInt(site.scrap));

    const bar = $("output-progress");
    const plan = isNum(shift.plan_good) && shift.plan_good > 0 ? shift.plan_good : null;
    const scale = plan ? Math.max(plan, fc && isNum(fc.expected_good) ? fc.expected_good : 0, site.good || 0) : 1;
    const pct = (v) => `${Math.min(100, (100 * v) / scale).toFixed(2)}%`;
    bar.querySelector(".fill").style.width = plan && isNum(site.good) ? pct(site.good) : "0%";
    const t0 = Date.parse(shift.start), t1 = Date.parse(shift.end), now = Date.parse(doc.now);
    const pace = plan && t1 > t0 ? plan * Math.min(1, Math.max(0, (now - t0) / (t1 - t0))) : null;
    bar.querySelector(".pace").style.left = pace !== null ? pct(pace) : "-10%";
    bar.querySelector(".forecast").style.left = plan && fc && isNum(fc.expected_good) ? pct(fc.expected_good) : "-10%";
    bar.classList.toggle("behind", pace !== null && isNum(site.good) && site.good < pace * 0.95);
  }

  // the chart: power (kW, left axis) and site OEE (%, right axis); the document's history (the
  // twin's last hour) when it has one, so the chart is full at the first event; else the points
  // this page has seen
  let chart = null;
  let series = [[], [], []];
  const orNull = (v) => (isNum(v) ? v : null);
  function chartData(doc, e) {
    const hist = doc.history;
    if (hist && Array.isArray(hist.t)) {
      return [hist.t.slice(), (hist.power_kw || []).map(orNull), (hist.oee || []).map((v) => (isNum(v) ? v * 100 : null))];
    }
    const t = Date.parse(doc.now) / 1000;
    if (!Number.isFinite(t) || (series[0].length && t <= series[0][series[0].length - 1])) return series;
    const next = series.map((s) => s.slice(-(POWER_POINTS - 1)));
    next[0].push(t);
    next[1].push(orNull(e.power_kw));
    next[2].push(isNum((doc.site_kpi || {}).oee) ? doc.site_kpi.oee * 100 : null);
    return next;
  }
  function drawEnergy(doc) {
    const e = doc.energy || {};
    const rate = e.co2e_rate_kg_per_h || {};
    const total = e.shift_co2e_kg || {};
    show($("power-kw"), e.power_kw, fmt1(e.power_kw));
    show($("shift-kwh"), e.shift_kwh, fmt1(e.shift_kwh));
    show($("co2e-rate-location"), rate.location, fmt1(rate.location));
    show($("co2e-rate-market"), rate.market, fmt1(rate.market));
    show($("shift-co2e-location"), total.location, fmt1(total.location));
    show($("shift-co2e-market"), total.market, fmt1(total.market));

    const span = doc.history && isNum(doc.history.span_s) ? doc.history.span_s : null;
    show($("chart-span"), span, span ? `last ${fmtMin(span)}` : "since this page opened");
    const data = chartData(doc, e);
    if (data === series && chart) return; // the same instant again
    series = data;
    const box = $("power-chart");
    box.dataset.points = String(series[0].length);
    if (!chart && typeof uPlot === "function") {
      const axis = { stroke: "#9aa4b2", grid: { stroke: "#2a3140" }, ticks: { stroke: "#2a3140" } };
      chart = new uPlot({
        width: Math.max(200, box.clientWidth), height: 160, legend: { show: false },
        cursor: { show: false }, scales: { x: { time: true }, kw: {}, pct: { range: [0, 100] } },
        axes: [{ ...axis, values: (u, splits) => {
                 const step = splits.length > 1 ? splits[1] - splits[0] : 60; // seconds only when ticks are that close
                 return splits.map((t) => (step < 60 ? fmtClock(t * 1000) : fmtHm(new Date(t * 1000).toISOString())));
               } },
               { ...axis, scale: "kw", size: 50, label: "kW", labelSize: 16 },
               { ...axis, scale: "pct", side: 1, size: 44, grid: { show: false }, label: "OEE %", labelSize: 16 }],
        series: [{}, { label: "power", scale: "kw", stroke: "#4fc3f7", width: 2, fill: "rgba(79,195,247,0.12)" },
                 { label: "site OEE", scale: "pct", stroke: "#7ee29a", width: 1.5, dash: [6, 4] }],
      }, series, box);
      window.dashboardChart = chart; // read by the browser test
      new ResizeObserver(() => chart.setSize({ width: Math.max(200, box.clientWidth), height: 160 })).observe(box);
    } else if (chart) {
      chart.setData(series);
    }
  }

  function drawAlarms(doc) {
    const list = $("alarms");
    const alarms = doc.alarms || [];
    show($("alarm-count"), alarms.length, String(alarms.length));
    $("alarm-count").classList.toggle("hot", alarms.some((a) => a.level === "error"));
    const items = alarms.map((a, i) => {
      const li = h("li", { class: `alarm ${a.level === "error" ? "error" : "warning"}`, testid: `alarm-${i}` },
        h("span", { class: "a-kind" }, (a.kind || "").replace(/_/g, " ")),
        h("span", { class: "a-text", testid: `alarm-text-${i}` }, a.text || ""),
        h("span", { class: "a-since" }, a.since ? `since ${fmtClock(a.since)}` : ""));
      li.dataset.kind = a.kind || "";
      li.dataset.level = a.level || "";
      return li;
    });
    if (!items.length) items.push(h("li", { class: "none" }, "No alarms"));
    list.replaceChildren(...items);

    const s = doc.samples || {};
    show($("samples-received"), s.received, fmtInt(s.received));
    show($("samples-used"), s.used, fmtInt(s.used));
    show($("samples-rejected"), s.rejected, fmtInt(s.rejected));
    const reasons = Object.entries(s.rejected_by_reason || {}).sort();
    $("rejected-reasons").replaceChildren(...reasons.map(([r, n]) =>
      h("li", {}, `${r.replace(/_/g, " ")}: `, (() => { const b = h("b", { testid: `rejected-${r}` }); show(b, n, fmtInt(n)); return b; })())));

    const links = $("connections");
    links.replaceChildren(...Object.entries(doc.connections || {}).map(([name, status]) => {
      const st = typeof status === "string" ? status : (status && (status.state || status.status)) || "unknown";
      const chip = h("span", { class: `link ${st === "up" ? "up" : "down"}`, testid: `conn-${name}` }, `${name} ${st}`);
      chip.dataset.value = st;
      return chip;
    }));
  }

  // --- the stream ----------------------------------------------------------------------------------
  let lastEvent = performance.now();
  let events = 0;
  function render(doc) {
    timeZone = typeof doc.timezone === "string" && doc.timezone ? doc.timezone : undefined;
    drawLines(doc);
    drawOutput(doc);
    drawEnergy(doc);
    drawAlarms(doc);
    // last, so a test that sees this "now" sees every figure of the same document
    show($("now"), doc.now, fmtClock(doc.now));
    events += 1;
    document.body.dataset.events = String(events);
  }

  function connect() {
    const source = new EventSource("/events");
    source.addEventListener("state", (ev) => {
      lastEvent = performance.now();
      let doc;
      try {
        doc = JSON.parse(ev.data);
      } catch (err) {
        console.error("bad state event", err);
        return;
      }
      render(doc);
    });
    // EventSource reconnects by itself (the server sets retry: 1000); the stale banner tells the operator
    source.onerror = () => document.body.classList.add("link-lost");
    source.onopen = () => document.body.classList.remove("link-lost");
  }

  setInterval(() => {
    const age = performance.now() - lastEvent;
    const stale = age > STALE_AFTER_MS;
    const banner = $("stale-banner");
    if (banner.hidden === stale) banner.hidden = !stale;
    document.body.classList.toggle("is-stale", stale);
    if (stale) $("stale-seconds").textContent = String(Math.floor(age / 1000));
  }, 250);

  connect();
})();
