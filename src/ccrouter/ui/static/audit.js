"use strict";
(function () {
  const form = document.getElementById("audit-filters");
  const body = document.querySelector("#audit-table tbody");
  const empty = document.getElementById("audit-empty");
  const error = document.getElementById("audit-error");
  const { api, el, fmt, showError } = window.ccr;

  async function load() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    params.set("limit", "500");
    try {
      const data = await api("GET", "/api/audit?" + params);
      showError(error, null);
      body.replaceChildren(
        ...data.entries.map((e) =>
          el(
            "tr",
            { "data-testid": "audit-row", class: e.outcome === "ok" ? "" : "failed" },
            el("td", {}, fmt.time(e.ts)),
            el("td", {}, e.actor),
            el("td", {}, el("code", {}, e.action)),
            el("td", {}, e.outcome),
            el("td", {}, e.target || ""),
            el("td", {}, e.address || ""),
            el("td", { class: "detail" }, e.detail ? JSON.stringify(e.detail) : "")
          )
        )
      );
      empty.hidden = data.entries.length > 0;
    } catch (e) {
      showError(error, e);
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
})();
