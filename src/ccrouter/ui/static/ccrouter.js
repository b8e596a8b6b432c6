// ccrouter's dashboard: what every page shares. No framework, no build step.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Calls the gateway's JSON API with the session cookie; a write carries the CSRF token. Resolves
  // with the decoded JSON (or text for CSV); rejects with an Error carrying the API's message,
  // status and body.
  async function api(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: Object.assign({}, headers || {}) };
    if (method !== "GET" && method !== "HEAD") init.headers["x-ccrouter-csrf"] = csrf;
    if (body !== undefined) {
      if (typeof body === "string") {
        init.body = body;
      } else {
        init.body = JSON.stringify(body);
        init.headers["content-type"] = "application/json";
      }
    }
    const response = await fetch(path, init);
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (response.status === 401) {
      window.location.assign("/ui/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    if (!response.ok) {
      const message = (data && data.error && data.error.message) || (typeof data === "string" ? data : response.statusText);
      const error = new Error(message);
      error.status = response.status;
      error.body = data;
      throw error;
    }
    return data;
  }

  const number = new Intl.NumberFormat("en-US");
  const fmt = {
    int: (v) => (v === null || v === undefined ? "–" : number.format(Math.round(v))),
    num: (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits)),
    usd: (v) => (v === null || v === undefined ? "–" : "$" + Number(v).toFixed(Math.abs(v) < 1 ? 4 : 2)),
    ms: (v) => (v === null || v === undefined ? "–" : Math.round(v) + " ms"),
    pct: (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"),
    time: (ts) => (ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "–"),
  };

  // An element with text and attributes: el("td", {class: "num"}, "12").
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function showError(node, error) {
    if (!node) return;
    node.textContent = error ? String(error.message || error) : "";
    node.hidden = !error;
  }

  // A time-series chart (uPlot): series is [{label, values}], x in unix seconds.
  const palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  function chart(node, x, series, options) {
    const width = Math.max(320, node.clientWidth || 640);
    const opts = Object.assign(
      {
        width,
        height: 220,
        scales: { x: { time: true } },
        legend: { live: false },
        series: [{}].concat(
          series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2, points: { show: x.length < 60 } }))
        ),
        axes: [{}, { size: 60 }],
      },
      options || {}
    );
    node.replaceChildren();
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], node);
    node.dataset.points = String(x.length);
    return plot;
  }

  window.ccr = { api, fmt, el, chart, showError, csrf };
})();
