// The Requests page: the ledger's request log (GET /api/requests), filtered, newest first. The
// filters live in the page's URL, so a link reproduces the view; "Older" fetches the next page.
"use strict";
(function () {
  const { api, el, fmt, showError } = window.ccr;
  const form = document.getElementById("request-filters");
  const body = document.querySelector("#requests-table tbody");
  const empty = document.getElementById("requests-empty");
  const error = document.getElementById("requests-error");
  const older = document.getElementById("requests-older");
  const COLUMNS = 8;
  const PAGE = 100;
  const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
  const FIELDS = ["range", "since", "until", "provider", "model", "key", "user", "session", "scenario", "status"];
  // A page size from the URL only (?limit=20): links and tests may ask for shorter pages.
  const asked = Number(new URLSearchParams(location.search).get("limit"));
  const pageSize = Number.isInteger(asked) && asked >= 1 && asked <= 500 ? asked : null;
  let next = null;

  // -- the filters <-> the URL <-> the API's query ------------------------------------------------
  function fromUrl() {
    const params = new URLSearchParams(location.search);
    for (const name of FIELDS) {
      const value = params.get(name);
      if (value !== null && form.elements[name]) form.elements[name].value = value;
    }
    if (!RANGES[form.elements.range.value] && !["all", "custom"].includes(form.elements.range.value)) {
      form.elements.range.value = "24h";
    }
    customShown();
  }

  function formState() {
    const state = new URLSearchParams();
    for (const name of FIELDS) {
      const value = (form.elements[name].value || "").trim();
      if (!value) continue;
      if ((name === "since" || name === "until") && form.elements.range.value !== "custom") continue;
      if (name === "range" && value === "24h") continue; // the default
      state.set(name, value);
    }
    if (pageSize !== null) state.set("limit", String(pageSize));
    return state;
  }

  // datetime-local gives "2026-12-03T08:00", read here as UTC (the table's times are UTC).
  function utcSeconds(value) {
    const ms = Date.parse(value.length === 16 ? value + ":00Z" : value + "Z");
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  }

  function apiQuery(state) {
    const query = new URLSearchParams();
    const range = state.get("range") || "24h";
    if (RANGES[range]) query.set("since", String(Math.floor(Date.now() / 1000) - RANGES[range]));
    for (const [name, value] of state) {
      if (name === "range" || name === "limit") continue;
      if (name === "since" || name === "until") {
        const seconds = utcSeconds(value);
        if (seconds !== null) query.set(name, String(seconds));
      } else {
        query.set(name, value);
      }
    }
    query.set("limit", String(pageSize || PAGE));
    return query;
  }

  function customShown() {
    const custom = form.elements.range.value === "custom";
    for (const node of form.querySelectorAll(".custom-range")) node.hidden = !custom;
  }

  // -- rendering -----------------------------------------------------------------------------------
  function failed(r) {
    return r.status >= 400 || r.error_type;
  }

  function statusCell(r) {
    const cls = failed(r) ? "status status-bad" : "status status-ok";
    return el(
      "td",
      {},
      el("span", { class: cls, "data-testid": "request-status" }, String(r.status)),
      r.error_type ? el("span", { class: "muted small" }, " " + r.error_type) : null
    );
  }

  function twoLines(first, second) {
    return [el("div", {}, first || "–"), second ? el("div", { class: "muted small" }, second) : null];
  }

  function usd(value) {
    return Number(value) === 0 ? "$0" : fmt.usd(Number(value));
  }

  function summaryRow(r) {
    const row = el(
      "tr",
      {
        class: "request" + (failed(r) ? " failed" : ""),
        "data-testid": "request-row",
        "data-id": String(r.id),
        "data-provider": r.provider || "",
        tabindex: "0",
        "aria-expanded": "false",
      },
      el("td", { class: "time" }, fmt.time(r.ts)),
      statusCell(r),
      el("td", {}, ...twoLines(r.provider, r.model)),
      el("td", {}, ...twoLines(r.key, r.user && r.user !== r.key ? r.user : null)),
      el("td", { class: "session", title: r.session || "" }, r.session ? el("code", {}, r.session) : "–"),
      el("td", { class: "num" }, `${fmt.int(r.input_tokens)} / ${fmt.int(r.output_tokens)}`, r.estimated ? el("span", { class: "muted", title: "estimated: the provider reported no usage" }, " ≈") : null),
      el("td", { class: "num" }, r.cost_usd === null ? el("span", { class: "muted", title: "no known price for this model" }, "unpriced") : usd(r.cost_usd)),
      el("td", { class: "num" }, ...twoLines(fmt.ms(r.latency_ms), r.ttfb_ms !== null ? "ttfb " + fmt.ms(r.ttfb_ms) : null))
    );
    row.addEventListener("click", () => toggle(row, r));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle(row, r);
      }
    });
    return row;
  }

  function fact(label, value, testid) {
    const shown = value === null || value === undefined || value === "" ? "–" : value;
    return [el("dt", {}, label), el("dd", testid ? { "data-testid": testid } : {}, shown)];
  }

  function attemptsList(r) {
    const items = r.fallbacks.map((a, i) =>
      el(
        "li",
        { class: "attempt failed-attempt", "data-testid": "request-attempt" },
        `${i + 1}. ${a.provider},${a.model} → `,
        el("span", { class: "status status-bad" }, a.status === null ? "no answer" : String(a.status)),
        a.error_type ? " " + a.error_type : ""
      )
    );
    if (r.provider && !failed(r)) {
      items.push(
        el(
          "li",
          { class: "attempt", "data-testid": "request-attempt" },
          `${items.length + 1}. ${r.provider},${r.model} → `,
          el("span", { class: "status status-ok" }, String(r.status)),
          " served"
        )
      );
    }
    return items.length ? el("ol", { class: "attempts" }, ...items) : el("span", { class: "muted" }, "no provider was called");
  }

  function facts(title, ...pairs) {
    return el("div", { class: "facts" }, el("h3", {}, title), el("dl", {}, ...pairs.flat()));
  }

  function detailRow(r) {
    const subagent = r.subagent === null || r.subagent === undefined ? null : r.subagent ? "yes" : "no";
    const route = el(
      "div",
      { class: "route" },
      el("h3", {}, "Route decision"),
      el("p", { class: "reason", "data-testid": "route-reason" }, r.route_reason || "no route was chosen (the request was refused before routing)"),
      el("h3", {}, `Attempts (${r.attempts})`),
      attemptsList(r)
    );
    const about = facts(
      "Request",
      fact("Request id", el("code", {}, r.request_id)),
      fact("Status", r.error_type ? `${r.status} ${r.error_type}` : String(r.status), "detail-status"),
      fact("Endpoint", r.endpoint),
      fact("Scenario", r.scenario, "detail-scenario"),
      fact("Profile", r.profile),
      fact("Subagent", subagent),
      fact("Project", r.project),
      fact("Team", r.team),
      fact("Ledger row", String(r.id))
    );
    const figures = facts(
      "Tokens, cost and timings",
      fact("Input", fmt.int(r.input_tokens)),
      fact("Output", fmt.int(r.output_tokens)),
      fact("Cache read", fmt.int(r.cache_read_tokens)),
      fact("Cache write", fmt.int(r.cache_write_tokens)),
      fact("Estimated", r.estimated ? "yes (the provider reported no usage)" : "no"),
      fact("Cost", r.cost_usd === null ? "unpriced (no known price)" : "$" + r.cost_usd, "detail-cost"),
      fact("Latency", fmt.ms(r.latency_ms)),
      fact("First byte", fmt.ms(r.ttfb_ms))
    );
    return el(
      "tr",
      { class: "request-detail", "data-testid": "request-detail" },
      el("td", { colspan: String(COLUMNS) }, el("div", { class: "detail-grid" }, route, about, figures))
    );
  }

  function toggle(row, r) {
    const open = row.nextElementSibling && row.nextElementSibling.classList.contains("request-detail");
    if (open) {
      row.nextElementSibling.remove();
      row.setAttribute("aria-expanded", "false");
      row.classList.remove("open");
    } else {
      row.after(detailRow(r));
      row.setAttribute("aria-expanded", "true");
      row.classList.add("open");
    }
  }

  // -- loading -------------------------------------------------------------------------------------
  async function load(append) {
    const query = apiQuery(formState());
    if (append && next !== null) query.set("before", String(next));
    older.disabled = true;
    try {
      const data = await api("GET", "/api/requests?" + query);
      showError(error, null);
      const rows = data.requests.map(summaryRow);
      if (append) body.append(...rows);
      else body.replaceChildren(...rows);
      next = data.next;
      older.hidden = next === null;
      empty.hidden = body.children.length > 0;
    } catch (e) {
      showError(error, e);
    } finally {
      older.disabled = false;
    }
  }

  function fillList(id, values) {
    const list = document.getElementById(id);
    list.replaceChildren(...[...values].sort().map((v) => el("option", { value: v })));
  }

  // Suggestions for the provider, model and scenario fields: what the last 30 days saw.
  async function suggestions() {
    try {
      const since = Math.floor(Date.now() / 1000) - RANGES["30d"];
      const data = await api("GET", `/api/usage?by=provider,model,scenario&since=${since}`);
      const pick = (name) => new Set(data.rows.map((row) => row[name]).filter(Boolean));
      fillList("known-providers", pick("provider"));
      fillList("known-models", pick("model"));
      fillList("known-scenarios", pick("scenario"));
    } catch (e) {
      // Suggestions only: the filters work without them.
    }
  }

  function apply() {
    const state = formState().toString();
    const url = location.pathname + (state ? "?" + state : "");
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    load(false);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  form.elements.range.addEventListener("change", customShown);
  document.getElementById("filter-clear").addEventListener("click", () => {
    form.reset();
    customShown();
    apply();
  });
  older.addEventListener("click", () => load(true));
  window.addEventListener("popstate", () => {
    form.reset();
    fromUrl();
    load(false);
  });
  fromUrl();
  load(false);
  suggestions();
})();
