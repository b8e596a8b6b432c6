// The Costs page: spend over time per provider, model, key, user, team or session (GET /api/usage:
// the 50 values that spent most, the range's and each bucket's totals, the six dearest bucket by
// bucket), the budgets and their use (GET /api/budgets), and every value by bucket as a CSV
// download. The range and dimension live in the URL.
"use strict";
(function () {
  const { api, el, fmt, chart, showError } = window.ccr;
  const form = document.getElementById("cost-filters");
  const error = document.getElementById("costs-error");
  const chartNode = document.getElementById("cost-chart");
  const totalsBody = document.querySelector("#cost-totals tbody");
  const budgetsBody = document.querySelector("#budgets-table tbody");
  const csv = document.getElementById("cost-csv");
  // Each range: its buckets' group in the ledger, their width in seconds, how many.
  const RANGES = {
    "24h": { group: "hour", step: 3600, count: 24, label: "last 24 hours, by hour" },
    "7d": { group: "day", step: 86400, count: 7, label: "last 7 days, by day" },
    "30d": { group: "day", step: 86400, count: 30, label: "last 30 days, by day" },
  };
  const DIMENSIONS = ["provider", "model", "key", "user", "team", "session"];
  const TOP = 6; // series drawn; the rest add up to "other"
  const NONE = "(none)";
  const ROWS = 50; // totals listed; the CSV has them all
  let plot = null;

  function state() {
    const params = new URLSearchParams(location.search);
    const range = RANGES[params.get("range")] ? params.get("range") : "7d";
    const by = DIMENSIONS.includes(params.get("by")) ? params.get("by") : "provider";
    return { range, by };
  }

  function setUrl(range, by) {
    const params = new URLSearchParams();
    if (range !== "7d") params.set("range", range);
    if (by !== "provider") params.set("by", by);
    const url = location.pathname + (params.toString() ? "?" + params : "");
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }

  // The first bucket's start: whole hours or UTC days, the current one last.
  function buckets(spec) {
    const now = Math.floor(Date.now() / 1000);
    const last = now - (now % spec.step);
    const x = [];
    for (let i = spec.count - 1; i >= 0; i--) x.push(last - i * spec.step);
    return x;
  }

  // The ledger's labels: "2026-12-03T08" (hour) or "2026-12-03" (day), UTC.
  function bucketStart(label) {
    const iso = label.length === 13 ? label + ":00:00Z" : label + "T00:00:00Z";
    return Math.floor(Date.parse(iso) / 1000);
  }

  function blank() {
    return { cost: 0, requests: 0, errors: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, unpriced: 0 };
  }

  function add(into, row) {
    into.cost += Number(row.cost_usd);
    into.requests += row.requests;
    into.errors += row.errors;
    into.input += row.input_tokens;
    into.output += row.output_tokens;
    into.cacheRead += row.cache_read_tokens;
    into.cacheWrite += row.cache_write_tokens;
    into.unpriced += row.unpriced;
  }

  function short(value) {
    return value.length > 24 ? value.slice(0, 12) + "…" + value.slice(-6) : value;
  }

  function usd(value) {
    return value === 0 ? "$0" : fmt.usd(value);
  }

  // Ticks on whole buckets, labelled in UTC: "12-03" for days, "08:00" for hours (and the date under midnight).
  function xAxis(spec) {
    const iso = (t) => new Date(t * 1000).toISOString();
    if (spec.step === 86400) {
      return { incrs: [86400, 2 * 86400, 7 * 86400], values: (u, splits) => splits.map((t) => iso(t).slice(5, 10)) };
    }
    return {
      incrs: [3600, 2 * 3600, 3 * 3600, 6 * 3600],
      values: (u, splits) => splits.map((t) => iso(t).slice(11, 16) + (iso(t).slice(11, 13) === "00" ? "\n" + iso(t).slice(5, 10) : "")),
    };
  }

  function valueOf(row, by) {
    return row[by] === null || row[by] === undefined ? NONE : row[by];
  }

  // The ledger is asked for what the page shows, never for every value of a month (48,000 sessions
  // on a busy gateway): the values that spent most (ranked by the server), the range's totals, each
  // bucket's total, and the top few values bucket by bucket; "other" is a bucket's rest.
  function draw(spec, by, report) {
    const x = buckets(spec);
    const index = new Map(x.map((t, i) => [t, i]));
    const ranked = report.top.map((row) => {
      const t = blank();
      add(t, row);
      return [valueOf(row, by), t];
    });
    const sum = blank();
    for (const row of report.total) add(sum, row);
    const shown = ranked.slice(0, TOP).map(([value]) => value);
    const bucketTotals = x.map(() => 0);
    for (const row of report.perBucket) {
      const at = index.get(bucketStart(row[spec.group]));
      if (at !== undefined) bucketTotals[at] += Number(row.cost_usd);
    }
    const values = shown.map(() => x.map(() => 0));
    for (const row of report.series) {
      const at = index.get(bucketStart(row[spec.group]));
      const series = shown.indexOf(valueOf(row, by));
      if (at === undefined || series < 0) continue; // outside the drawn buckets (a clock edge)
      values[series][at] += Number(row.cost_usd);
    }
    const rest = bucketTotals.map((total, i) => {
      const left = total - values.reduce((acc, series) => acc + series[i], 0);
      return left > 1e-9 ? left : 0; // sums of decimals: a rounding crumb is nothing
    });
    const other = ranked.length > TOP && rest.some((v) => v > 0);
    const labels = other ? [...shown, "other"] : shown;
    if (other) values.push(rest);
    if (plot) plot.destroy();
    plot = chart(
      chartNode,
      x,
      labels.map((label, i) => ({ label: short(label), values: values[i] })),
      {
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        legend: { live: false },
        axes: [xAxis(spec), { size: 70, values: (u, splits) => splits.map((v) => "$" + (v >= 1 ? v.toFixed(2) : Number(v.toPrecision(2)))) }],
      }
    );
    chartNode.dataset.series = labels.join("\n");
    document.getElementById("cost-chart-title").textContent = `Spend by ${by}, ${spec.label} (UTC)`;
    document.getElementById("cost-chart-note").textContent = other
      ? `The ${TOP} values that spent most, the others summed as "other".`
      : ranked.length ? "" : "Nothing was spent in this range.";
    totalsTable(by, ranked, sum);
    document.getElementById("cost-total").textContent = usd(sum.cost);
    document.getElementById("cost-requests").textContent = fmt.int(sum.requests);
    document.getElementById("cost-errors").textContent = fmt.int(sum.errors);
    document.getElementById("cost-unpriced").textContent = fmt.int(sum.unpriced);
  }

  function totalsTable(by, ranked, sum) {
    document.getElementById("cost-dimension-heading").textContent = by[0].toUpperCase() + by.slice(1);
    document.getElementById("cost-totals-title").textContent = `Totals by ${by}`;
    totalsBody.replaceChildren(
      ...ranked.map(([value, t]) =>
        el(
          "tr",
          { "data-testid": "cost-total-row" },
          el("td", { class: value === NONE ? "muted" : "" }, by === "session" && value !== NONE ? el("code", {}, value) : value),
          el("td", { class: "num" }, usd(t.cost)),
          el("td", { class: "num" }, sum.cost > 0 ? fmt.pct(t.cost / sum.cost) : "–"),
          el("td", { class: "num" }, fmt.int(t.requests)),
          el("td", { class: "num" }, fmt.int(t.errors)),
          el("td", { class: "num" }, fmt.int(t.input)),
          el("td", { class: "num" }, fmt.int(t.output)),
          el("td", { class: "num" }, `${fmt.int(t.cacheRead)} / ${fmt.int(t.cacheWrite)}`),
          el("td", { class: "num" }, t.unpriced ? fmt.int(t.unpriced) : "–")
        )
      )
    );
    if (ranked.length >= ROWS) {
      totalsBody.append(el("tr", { class: "more" }, el("td", { colspan: "9", class: "muted" }, `The ${ROWS} that spent most: the CSV download lists them all.`)));
    }
    document.getElementById("cost-totals-empty").hidden = ranked.length > 0;
  }

  async function report(spec, by, since) {
    const range = `since=${since}`;
    const [top, total, perBucket] = await Promise.all([
      api("GET", `/api/usage?by=${by}&${range}&limit=${ROWS}`),
      api("GET", `/api/usage?${range}`),
      api("GET", `/api/usage?by=${spec.group}&${range}`),
    ]);
    // The top values over time; an empty value asks for the rows that have none.
    const chosen = top.rows.slice(0, TOP).map((row) => `${by}=${encodeURIComponent(row[by] === null ? "" : row[by])}`);
    const series = chosen.length ? await api("GET", `/api/usage?by=${spec.group},${by}&${range}&${chosen.join("&")}`) : { rows: [] };
    return { top: top.rows, total: total.rows, perBucket: perBucket.rows, series: series.rows };
  }

  let loading = 0;
  async function load() {
    const { range, by } = state();
    form.elements.range.value = range;
    form.elements.by.value = by;
    const spec = RANGES[range];
    const since = buckets(spec)[0];
    csv.href = `/api/usage?by=${spec.group},${by}&since=${since}&format=csv`;
    const mine = ++loading;
    try {
      const data = await report(spec, by, since);
      if (mine !== loading) return; // a newer choice is on its way
      showError(error, null);
      draw(spec, by, data);
    } catch (e) {
      showError(error, e);
    }
  }

  function budgetRow(b) {
    const use = b.use === null ? 0 : b.use;
    const meter = el("meter", { min: "0", max: "1", low: "0.8", high: "0.9999", optimum: "0", value: String(Math.min(use, 1)), "data-testid": "budget-use" });
    return el(
      "tr",
      { "data-testid": "budget-row", class: use >= 1 ? "spent" : "" },
      el("td", {}, b.name, b.source === "key" ? el("span", { class: "muted small" }, " managed key") : null),
      el("td", {}, el("code", {}, b.scope)),
      el("td", {}, b.period),
      el("td", { class: "num" }, `${usd(b.used_usd)} / ${usd(b.limit_usd)}`),
      el("td", { class: "use" }, meter, el("span", { class: "pct" }, use > 0 && use < 0.001 ? "<0.1%" : fmt.pct(use))),
      el("td", { class: "action action-" + b.action }, el("strong", {}, b.action), " — " + b.at_limit),
      el("td", { class: "time" }, fmt.time(b.resets_at).slice(0, 16))
    );
  }

  async function budgets() {
    try {
      const data = await api("GET", "/api/budgets");
      budgetsBody.replaceChildren(...data.budgets.map(budgetRow));
      document.getElementById("budgets-empty").hidden = data.budgets.length > 0;
      document.getElementById("budgets-table").hidden = data.budgets.length === 0;
    } catch (e) {
      showError(error, e);
    }
  }

  form.addEventListener("change", () => {
    setUrl(form.elements.range.value, form.elements.by.value);
    load();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  window.addEventListener("popstate", load);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => plot && plot.setSize({ width: Math.max(320, chartNode.clientWidth), height: 220 }), 150);
  });
  load();
  budgets();
})();
