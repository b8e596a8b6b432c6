"use strict";
// The Configuration page: the running configuration (masked) for every role; for admins, the config
// file's editor (validate, then apply through the live reload).
(function () {
  const { api, el, showError } = window.ccr;
  const loadError = document.getElementById("config-load-error");
  const running = document.getElementById("config-running");
  const editor = document.getElementById("config-editor");
  const errors = document.getElementById("config-error");
  const ok = document.getElementById("config-ok");
  const fileVersion = document.getElementById("config-file-version");
  const buttons = ["config-validate", "config-apply", "config-reload"]
    .map((id) => document.getElementById(id))
    .filter(Boolean);
  let version = null;

  function text(id, value) {
    document.getElementById(id).textContent = value === null || value === undefined ? "–" : String(value);
  }

  function lastReload(last) {
    if (!last) return "none since start";
    let out = last.status + " (" + last.previous_version + " → " + last.version + ")";
    if (last.restart_required && last.restart_required.length) out += "; restart needed for " + last.restart_required.join(", ");
    if (last.error) out += ": " + last.error;
    return out;
  }

  async function loadRunning() {
    try {
      const data = await api("GET", "/api/config");
      showError(loadError, null);
      text("config-version", data.version);
      text("config-loaded", data.loaded_at.replace("T", " ").replace("Z", " UTC"));
      text("config-path", data.config_path || "none (started without a config file)");
      text("config-last", lastReload(data.last_reload));
      running.textContent = JSON.stringify(data.settings, null, 2);
    } catch (e) {
      showError(loadError, e);
    }
  }

  function busy(on) {
    for (const button of buttons) button.disabled = on;
  }

  function say(message) {
    if (!ok) return; // an operator's page has no editor: the last reload shows the result
    ok.textContent = message || "";
    ok.hidden = !message;
  }

  // One line per problem: its key path, then what is wrong.
  function problems(list) {
    errors.replaceChildren(
      ...list.map((p) => (p.path ? el("li", {}, el("code", {}, p.path), ": " + p.message) : el("li", { class: "note" }, p.message)))
    );
    errors.hidden = list.length === 0;
  }

  function failed(e) {
    if (e.status === 422 && e.body && Array.isArray(e.body.errors)) problems(e.body.errors);
    else if (e.status === 409) problems([{ message: e.message + (/reload the page/.test(e.message) ? "" : " (reload the page)") }]);
    else problems([{ message: e.message }]);
  }

  async function loadSource() {
    if (!editor) return;
    try {
      const data = await api("GET", "/api/config/source");
      editor.value = data.source;
      version = data.version;
      document.getElementById("config-redacted").hidden = !data.redacted;
      text("config-file-version", version);
    } catch (e) {
      editor.disabled = true;
      failed(e);
    }
  }

  async function validate() {
    busy(true);
    say(null);
    try {
      const data = await api("POST", "/api/config/validate", { source: editor.value }, { "if-match": version });
      if (data.ok) {
        problems([]);
        const restart = data.restart_required.length ? " (needs a restart: " + data.restart_required.join(", ") + ")" : "";
        say("Valid" + restart + ".");
      } else {
        problems(data.errors);
      }
    } catch (e) {
      failed(e);
    } finally {
      busy(false);
    }
  }

  async function apply() {
    busy(true);
    say(null);
    try {
      const data = await api("PUT", "/api/config/source", { source: editor.value }, { "if-match": version });
      problems([]);
      const reload = data.reload;
      let message = "Applied: file version " + data.version + ", configuration " + reload.status + " (version " + reload.version + ").";
      if (reload.restart_required.length) message += " Restart the gateway for " + reload.restart_required.join(", ") + ".";
      await Promise.all([loadRunning(), loadSource()]);
      say(message);
    } catch (e) {
      failed(e);
    } finally {
      busy(false);
    }
  }

  async function reloadFromFile() {
    busy(true);
    try {
      const data = await api("POST", "/api/config/reload");
      say("Reload: " + data.status + " (version " + data.version + ").");
      showError(loadError, null);
    } catch (e) {
      showError(loadError, e);
    } finally {
      await loadRunning();
      busy(false);
    }
  }

  if (editor) {
    document.getElementById("config-validate").addEventListener("click", validate);
    document.getElementById("config-apply").addEventListener("click", apply);
  }
  const reloadButton = document.getElementById("config-reload");
  if (reloadButton) reloadButton.addEventListener("click", reloadFromFile);
  loadRunning();
  loadSource();
})();
