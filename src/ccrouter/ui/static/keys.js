// The Keys page: the managed keys with their limits and spend; create, edit, rotate and revoke.
// A new or rotated key's secret is in the API's answer only: it is shown once in the secret panel
// and kept nowhere else (not in the table, not in storage), so a reload forgets it.
"use strict";
(function () {
  const { api, el, fmt, showError } = window.ccr;
  const root = document.getElementById("keys");
  const manage = root.dataset.manage === "true";
  const manageAny = root.dataset.manageAny === "true";
  const body = document.querySelector("#keys-table tbody");
  const empty = document.getElementById("keys-empty");
  const error = document.getElementById("key-error");
  const form = document.getElementById("key-create");
  const panel = document.getElementById("key-secret-panel");
  const secretNode = document.getElementById("key-secret");
  const secretTitle = document.getElementById("key-secret-title");
  const copied = document.getElementById("key-secret-copied");
  const COLUMNS = manage ? 12 : 11;
  const USAGE_DAYS = 30;
  const PERIOD_NAMES = { daily: "today", weekly: "this week", monthly: "this month" };

  // The API gives ISO times in UTC ("2026-12-03T08:00:00Z"): shown to the minute.
  const when = (value) => (value ? value.replace("T", " ").slice(0, 16) : "–");
  const muted = (text) => el("span", { class: "muted" }, text);

  // -- the once-shown secret -----------------------------------------------------------------

  function showSecret(title, secret) {
    secretTitle.textContent = title;
    secretNode.textContent = secret;
    copied.hidden = true;
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }

  function forgetSecret() {
    secretNode.textContent = "";
    panel.hidden = true;
  }

  async function copySecret() {
    try {
      await navigator.clipboard.writeText(secretNode.textContent);
      copied.textContent = "Copied to the clipboard.";
    } catch (_) {
      // No clipboard access (a plain-http origin other than localhost): select it for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(secretNode);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
    copied.hidden = false;
  }

  document.getElementById("key-secret-copy").addEventListener("click", copySecret);
  document.getElementById("key-secret-dismiss").addEventListener("click", forgetSecret);

  // -- form values to API fields ---------------------------------------------------------------

  // A field's value as the API takes it: null when empty; numbers as numbers when they are ones
  // (anything else is sent as typed, for the API to refuse with its own message).
  function fieldValue(name, raw) {
    const text = String(raw || "").trim();
    if (text === "") return null;
    if (name === "models") {
      const list = text.split(/[\s;]+/).filter(Boolean);
      return list.length ? list : null;
    }
    if (name === "rpm" || name === "tpm") return /^[0-9]+$/.test(text) ? Number(text) : text;
    if (name === "budget_usd") return /^[0-9]*\.?[0-9]+$/.test(text) ? Number(text) : text;
    return text;
  }

  function formFields(node) {
    const out = {};
    for (const [name, raw] of new FormData(node)) out[name] = fieldValue(name, raw);
    return out;
  }

  // -- the table -------------------------------------------------------------------------------

  function limits(k) {
    if (k.rpm === null && k.tpm === null) return muted("none");
    return `${k.rpm === null ? "–" : fmt.int(k.rpm)} · ${k.tpm === null ? "–" : fmt.int(k.tpm)}`;
  }

  function spend(k) {
    const period = PERIOD_NAMES[k.spend_period] || k.spend_period;
    if (k.budget_usd === null) return el("div", {}, fmt.usd(k.spend_usd), " ", muted(period + ", no budget"));
    return el(
      "div",
      { class: "key-budget" },
      el("div", {}, `${fmt.usd(k.spend_usd)} of ${fmt.usd(k.budget_usd)} `, muted(period)),
      el("meter", { min: 0, max: k.budget_usd, value: Math.min(k.spend_usd, k.budget_usd), low: 0.5 * k.budget_usd, high: 0.8 * k.budget_usd, optimum: 0 })
    );
  }

  function status(k) {
    const badge = el("span", { class: `key-status key-status-${k.status}`, "data-testid": "key-status" }, k.status);
    if (k.status === "active" && k.rotated_until) {
      return el("div", {}, badge, el("div", { class: "muted" }, `old secret until ${when(k.rotated_until)}`));
    }
    return badge;
  }

  function row(k, usage) {
    const used = usage.get(k.id);
    const tr = el(
      "tr",
      { "data-testid": "key-row", "data-key-id": k.id, "data-status": k.status, class: k.status === "active" ? "" : "inactive" },
      el("td", {}, el("div", { class: "key-name" }, k.name), el("code", { class: "key-id" }, k.id), el("code", { class: "key-id" }, k.prefix + "…")),
      el("td", {}, el("span", { class: `key-role key-role-${k.role}` }, k.role)),
      el("td", {}, k.user || k.team ? [k.user || "–", k.team || "–"].join(" / ") : muted("–")),
      el("td", { class: "key-models" }, k.models ? k.models.join(", ") : muted("any")),
      el("td", { class: "num" }, limits(k)),
      el("td", {}, spend(k)),
      el("td", { class: "num" }, used ? `${fmt.int(used.requests)} req · ${fmt.usd(Number(used.cost_usd))}` : muted("–")),
      el("td", { class: "key-when" }, when(k.expires_at)),
      el("td", { class: "key-when" }, when(k.created_at), k.created_by ? el("div", { class: "muted" }, "by " + k.created_by) : null),
      el("td", { class: "key-when" }, when(k.last_used_at)),
      el("td", {}, status(k))
    );
    if (manage) tr.append(el("td", { class: "key-actions" }, ...actions(k, tr)));
    return tr;
  }

  function button(label, testid, onClick, kind) {
    const node = el("button", { type: "button", "data-testid": testid, class: kind || "secondary" }, label);
    node.addEventListener("click", onClick);
    return node;
  }

  function actions(k, tr) {
    if (k.status === "revoked") return [];
    if (!manageAny && k.role !== "client") return [muted("admin only")];
    const cell = () => tr.querySelector(".key-actions");
    const restore = () => cell().replaceChildren(...actions(k, tr));
    return [
      button("Edit", "key-edit", () => openEditor(k, tr)),
      button("Rotate", "key-rotate", () => cell().replaceChildren(...rotateConfirm(k, restore))),
      button("Revoke", "key-revoke", () => cell().replaceChildren(...revokeConfirm(k, restore)), "danger"),
    ];
  }

  function revokeConfirm(k, cancel) {
    return [
      el("div", { class: "key-confirm" }, `Revoke ${k.name}? It stops working at once, for good.`),
      button("Revoke key", "key-revoke-confirm", () => act(() => api("DELETE", `/api/keys/${encodeURIComponent(k.id)}`)), "danger"),
      button("Cancel", "key-cancel", cancel),
    ];
  }

  function rotateConfirm(k, cancel) {
    const grace = el(
      "select",
      { "data-testid": "key-rotate-grace", "aria-label": "the old secret stops" },
      el("option", { value: "" }, "after the server's grace period"),
      el("option", { value: "0" }, "at once"),
      el("option", { value: "3600" }, "in 1 hour")
    );
    const rotate = async () => {
      const choice = grace.value === "" ? undefined : { grace_s: Number(grace.value) };
      const answer = await act(() => api("POST", `/api/keys/${encodeURIComponent(k.id)}/rotate`, choice));
      if (answer) showSecret(`New secret for ${answer.name}`, answer.key);
    };
    return [
      el("label", { class: "key-confirm" }, `Rotate ${k.name}: the old secret stops`, grace),
      button("Rotate key", "key-rotate-confirm", rotate, ""),
      button("Cancel", "key-cancel", cancel),
    ];
  }

  // -- editing limits (PATCH) -----------------------------------------------------------------

  const EDITABLE = ["name", "user", "team", "models", "rpm", "tpm", "budget_usd", "budget_period", "expires"];

  function current(k) {
    return {
      name: k.name,
      role: k.role,
      user: k.user,
      team: k.team,
      models: k.models,
      rpm: k.rpm,
      tpm: k.tpm,
      budget_usd: k.budget_usd,
      budget_period: k.budget_period,
      expires: k.expires_at,
    };
  }

  function input(label, name, value, attrs) {
    const shown = Array.isArray(value) ? value.join(" ") : value === null || value === undefined ? "" : String(value);
    return el("label", { class: name === "models" ? "wide" : "" }, label, el("input", Object.assign({ name, value: shown }, attrs || {})));
  }

  function select(label, name, options, value) {
    const node = el("select", { name, "data-testid": `key-edit-${name}` });
    for (const [optionValue, text] of options) {
      node.append(el("option", { value: optionValue, selected: optionValue === (value || "") }, text));
    }
    return el("label", {}, label, node);
  }

  function openEditor(k, tr) {
    const open = body.querySelector("tr.key-edit-row");
    if (open) open.remove();
    const was = current(k);
    const fields = [
      input("Name", "name", was.name, { maxlength: 64, required: true }),
      manageAny
        ? select("Role", "role", [...document.querySelectorAll("#key-create-role option")].map((o) => [o.value, o.textContent]), was.role)
        : null,
      input("User", "user", was.user, { maxlength: 128 }),
      input("Team", "team", was.team, { maxlength: 128 }),
      input("Models", "models", was.models, { maxlength: 4000, placeholder: "any" }),
      input("RPM", "rpm", was.rpm, { type: "number", min: 1, step: 1, placeholder: "none", "data-testid": "key-edit-rpm" }),
      input("TPM", "tpm", was.tpm, { type: "number", min: 1, step: 1, placeholder: "none", "data-testid": "key-edit-tpm" }),
      input("Budget (USD)", "budget_usd", was.budget_usd, { type: "number", min: 0, step: "any", placeholder: "none", "data-testid": "key-edit-budget" }),
      select("Budget period", "budget_period", [["", "–"], ["daily", "daily"], ["weekly", "weekly"], ["monthly", "monthly"]], was.budget_period),
      input("Expires", "expires", was.expires, { maxlength: 40, placeholder: "never" }),
    ];
    const editor = el("form", { class: "key-form", "data-testid": "key-editor" }, ...fields.filter(Boolean));
    const close = () => editorRow.remove();
    editor.append(
      el("button", { type: "submit", "data-testid": "key-edit-save" }, "Save"),
      button("Cancel", "key-edit-cancel", close)
    );
    editor.addEventListener("submit", async (event) => {
      event.preventDefault();
      const given = formFields(editor);
      const changes = {};
      for (const name of [...EDITABLE, "role"]) {
        if (!(name in given)) continue;
        if (JSON.stringify(given[name]) !== JSON.stringify(was[name] === undefined ? null : was[name])) changes[name] = given[name];
      }
      if (Object.keys(changes).length === 0) return close();
      await act(() => api("PATCH", `/api/keys/${encodeURIComponent(k.id)}`, changes));
    });
    const editorRow = el("tr", { class: "key-edit-row" }, el("td", { colspan: COLUMNS }, editor));
    tr.after(editorRow);
    editor.querySelector("input").focus();
  }

  // -- loading and acting ----------------------------------------------------------------------

  // Runs one API write, shows its error in the page, reloads the table after a success.
  async function act(call) {
    try {
      const answer = await call();
      showError(error, null);
      await load();
      return answer;
    } catch (e) {
      showError(error, e);
      return null;
    }
  }

  async function usageByKey() {
    const since = Math.floor(Date.now() / 1000) - USAGE_DAYS * 86400;
    try {
      const data = await api("GET", `/api/usage?by=key&since=${since}`);
      return new Map(data.rows.filter((r) => r.key).map((r) => [r.key, r]));
    } catch (_) {
      return new Map(); // the keys still show; their 30-day column says "–"
    }
  }

  async function load() {
    try {
      const [data, usage] = await Promise.all([api("GET", "/api/keys"), usageByKey()]);
      const keys = data.keys.slice().reverse(); // newest first
      body.replaceChildren(...keys.map((k) => row(k, usage)));
      empty.hidden = keys.length > 0;
      root.dataset.loaded = "true";
    } catch (e) {
      showError(error, e);
    }
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = formFields(form);
      const spec = {};
      for (const [name, value] of Object.entries(fields)) if (value !== null) spec[name] = value;
      const answer = await act(() => api("POST", "/api/keys", spec));
      if (answer) {
        form.reset();
        showSecret(`New key ${answer.name}`, answer.key);
      }
    });
  }
  load();
})();
