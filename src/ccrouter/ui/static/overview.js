// The Overview page: the last minute and hour of traffic, each provider's state, charts of the hour.
// One fetch of /api/overview at load, then the same document pushed every second by /api/live
// (Server-Sent Events); when the stream closes it is opened again a little later.
"use strict";
(function () {
  const { api, el, fmt, chart, showError } = window.ccr;
  const $ = (id) => document.getElementById(id);
  const error = $("overview-error");
  const badge = $("live-state");
  const providersBody = document.querySelector("#providers-table tbody");
  const modelsBody = document.querySelector("#models-table tbody");
  const REOPEN_MS = 5000;
  const charts = {};
  let stream = null;
  let lastNow = 0;

  function setState(state, text) {
    badge.dataset.state = state;
    badge.textContent = text;
  }

  const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? Number(v).toFixed(1) + " ms" : fmt.ms(v));
  const seconds = (v) => (v > 0 ? Math.ceil(v) + " s" : "–");

  function stateBadge(state) {
    return el("span", { class: "state state-" + state }, state.replace("_", " "));
  }

  function headroom(value) {
    return el(
      "td",
      { class: "num", title: fmt.pct(value) + " of the tightest known limit free" },
      el("meter", { min: "0", max: "1", low: "0.2", high: "0.5", optimum: "1", value: String(value) }),
      " ",
      fmt.pct(value)
    );
  }

  function cooldown(value) {
    return el("td", { class: value > 0 ? "num cooling" : "num", "data-testid": "cooldown" }, seconds(value));
  }

  function errorsCell(n) {
    return el("td", { class: n > 0 ? "num errors-some" : "num" }, fmt.int(n));
  }

  function renderProviders(rows) {
    providersBody.replaceChildren(
      ...rows.map((p) =>
        el(
          "tr",
          { "data-testid": "provider-row", "data-provider": p.name },
          el("td", {}, el("strong", {}, p.name), " ", el("span", { class: "muted" }, p.type)),
          el("td", { "data-testid": "provider-state" }, stateBadge(p.state)),
          el("td", { class: "breaker-" + p.breaker }, p.breaker.replace("_", " ")),
          el("td", { class: "num" }, fmt.pct(p.health_score)),
          headroom(p.headroom),
          cooldown(p.cooldown_s),
          el("td", { class: "num" }, String(p.credentials)),
          el("td", { class: "num", "data-testid": "provider-requests" }, String(p.hour.requests)),
          el("td", { class: "num" }, ms(p.hour.p95_ms)),
          errorsCell(p.hour.errors)
        )
      )
    );
  }

  function renderModels(rows) {
    modelsBody.replaceChildren(
      ...rows.map((m) =>
        el(
          "tr",
          { "data-testid": "model-row" },
          el("td", {}, m.provider),
          el("td", {}, el("code", {}, m.model)),
          el("td", {}, stateBadge(m.state)),
          headroom(m.headroom),
          cooldown(m.cooldown_s),
          el("td", { class: "num" }, fmt.num(m.minute.requests_per_s, 2)),
          el("td", { class: "num" }, String(m.hour.requests)),
          el("td", { class: "num" }, ms(m.hour.p50_ms)),
          el("td", { class: "num" }, ms(m.hour.p95_ms)),
          errorsCell(m.hour.errors),
          el("td", { class: "num" }, fmt.int(m.hour.input_tokens + m.hour.output_tokens)),
          el("td", { class: "num" }, fmt.usd(m.hour.cost_usd))
        )
      )
    );
    $("models-empty").hidden = rows.length > 0;
  }

  // Each chart is made once, then given new data (no new uPlot per update).
  // ``dots``: a series with gaps (minutes without requests have no p95) shows each point.
  function plot(id, label, x, values, dots) {
    const existing = charts[id];
    if (existing) {
      existing.setData([x, values]);
      $(id).dataset.points = String(x.length);
      return;
    }
    const options = { legend: { show: false } };
    if (dots) {
      options.series = [{}, { label, stroke: "#2563eb", width: 2, points: { show: true, size: 5, fill: "#2563eb" } }];
    }
    charts[id] = chart($(id), x, [{ label, values }], options);
  }

  function render(data) {
    if (data.now < lastNow) return; // a late answer older than what is shown
    lastNow = data.now;
    const minute = data.traffic.minute;
    const hour = data.traffic.hour;
    $("requests-total").textContent = String(hour.requests);
    $("rps").textContent = fmt.num(minute.requests_per_s, 2);
    $("p50").textContent = ms(minute.p50_ms);
    $("p95").textContent = ms(minute.p95_ms);
    $("error-rate").textContent = minute.requests ? fmt.pct(minute.error_rate) : "–";
    $("tps").textContent = fmt.num(minute.tokens_per_s, 1);
    $("spend-today").textContent = fmt.usd(data.spend_today.cost_usd);
    $("overview-updated").textContent = "as of " + fmt.time(data.now) + " UTC";
    renderProviders(data.providers);
    renderModels(data.models);
    const s = data.series;
    plot("chart-rps", "requests/s", s.t, s.requests_per_s);
    plot("chart-p95", "p95 ms", s.t, s.p95_ms, true);
    plot("chart-tps", "tokens/s", s.t, s.tokens_per_s);
  }

  async function load() {
    try {
      render(await api("GET", "/api/overview"));
      showError(error, null);
    } catch (e) {
      showError(error, e);
    }
  }

  function open() {
    if (!window.EventSource) return;
    stream = new EventSource("/api/live");
    stream.addEventListener("open", () => setState("live", "live"));
    stream.addEventListener("overview", (event) => {
      try {
        render(JSON.parse(event.data));
        showError(error, null);
      } catch (e) {
        showError(error, e);
      }
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        // Refused (429, a session gone): the fetch shows why (or goes to the login), then retry.
        setState("offline", "offline");
        stream = null;
        setTimeout(() => load().then(open), REOPEN_MS);
      } else {
        setState("connecting", "reconnecting…");
      }
    });
  }

  window.addEventListener("pagehide", () => stream && stream.close());
  load().then(open);
})();
