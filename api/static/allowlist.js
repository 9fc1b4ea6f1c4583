// The allowlist page and "Allowlist this device": identities that name one device, the
// configuration's entries (read-only), flagged and expired entries, a preview before adding,
// and undo. Loaded after app.js; it replaces app.js's allowlist functions of the same names.
"use strict";

const ALLOW_KINDS = {
  mac: "Wi-Fi MAC (global, per-network or MDM-fixed)",
  ble_identity: "BLE address (public or static)",
  ble_irk: "BLE IRK",
  fingerprint: "Wi-Fi fingerprint (names no device)",
};
const ALLOW_FLAGS = {
  "fingerprint-not-identity": "Inactive: a fingerprint is shared by every phone of this model. Replace it with the device's MAC or IRK.",
};

// An IRK tracks a phone: shown shortened, in full only in the edit field.
function allowValue(entry) {
  return entry.match === "ble_irk" ? `${entry.value.slice(0, 6)}… (key)` : entry.value;
}

function allowStatus(entry) {
  if (entry.flag) return ALLOW_FLAGS[entry.flag] || `Inactive: ${entry.flag}`;
  if (!entry.in_force) return "Expired: exempts nothing.";
  if (entry.expires_ts) return `Until ${fmtTime(entry.expires_ts)}`;
  return "";
}

// eslint-disable-next-line no-unused-vars -- replaces app.js's function of the same name
async function refreshAllowlist() {
  const data = await api("GET", `${API}/allowlist`);
  state.allowlist = data.entries;
  state.allowlistConfig = data.config || [];
}

function allowRow(entry, readOnly) {
  const status = allowStatus(entry);
  const row = el(
    "tr",
    { class: entry.in_force === false ? "allow-inactive" : "" },
    el("td", { text: ALLOW_KINDS[entry.match] || entry.match }),
    el("td", { class: "mono", text: allowValue(entry) }),
    el("td", {}, el("span", { text: entry.label }), status ? el("div", { class: "allow-status", text: status }) : ""),
    el("td", { text: readOnly ? "site configuration" : `${entry.added_by} ${fmtTime(entry.added_ts)}` }),
    el(
      "td",
      {},
      readOnly
        ? el("span", { class: "allow-readonly", text: "config (read-only)" })
        : el("button", { type: "button", class: "small", text: "Remove", "aria-label": `Remove ${entry.label || entry.match}`, onclick: () => removeAllowed(entry) }),
    ),
  );
  return row;
}

// eslint-disable-next-line no-unused-vars -- replaces app.js's function of the same name
function renderAllowlist() {
  const body = $("allow-list");
  clear(body);
  for (const entry of state.allowlistConfig || []) body.append(allowRow(entry, true));
  for (const entry of state.allowlist) body.append(allowRow(entry, false));
  if (!state.allowlist.length && !(state.allowlistConfig || []).length) {
    body.append(el("tr", {}, el("td", { colspan: "5", class: "empty", text: "The allowlist is empty." })));
  }
}

// "Allowlist this device": show what would be added, ask for a label, add, offer undo.
// eslint-disable-next-line no-unused-vars -- replaces app.js's function of the same name
async function allowlistAlert(alertId, where) {
  const host = where || $("alarm-error").parentNode;
  const old = host.querySelector(".allow-confirm");
  if (old) old.remove();
  const msg = where ? where.querySelector(".allow-msg") || where.appendChild(el("span", { class: "allow-msg", role: "status" })) : $("alarm-error");
  msg.textContent = "";
  let preview;
  try {
    preview = await api("POST", `${API}/allowlist`, { alert_id: alertId, dry_run: true });
  } catch (err) {
    msg.textContent = `Nothing to add: ${err.message}`;
    return;
  }
  if (!preview.added.length) {
    msg.textContent = "Already on the allowlist.";
    return;
  }
  const label = el("input", { class: "allow-confirm-label", maxlength: "100", required: "", placeholder: "whose device, e.g. Guard Weber's phone" });
  const box = el(
    "form",
    { class: "allow-confirm", "aria-label": "Add to the allowlist" },
    el("p", { text: "These identities name this device alone and will be added:" }),
    el("ul", {}, ...preview.added.map((e) => el("li", {}, `${ALLOW_KINDS[e.match] || e.match}: `, el("span", { class: "mono", text: allowValue(e) })))),
    el("label", {}, "Label ", label),
    el("button", { type: "submit", class: "primary", text: "Add" }),
    el("button", { type: "button", class: "allow-cancel", text: "Cancel", onclick: () => box.remove() }),
  );
  box.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = label.value.trim();
    if (!text) {
      label.focus();
      return;
    }
    try {
      const result = await api("POST", `${API}/allowlist`, { alert_id: alertId, label: text });
      state.allowlist = result.entries;
      box.remove();
      msg.textContent = `Added ${result.added.length} identifier${result.added.length === 1 ? "" : "s"} to the allowlist.`;
      const ids = result.added.map((e) => e.id);
      msg.append(" ", el("button", { type: "button", class: "small allow-undo", text: "Undo", onclick: () => undoAllowed(ids, msg) }));
    } catch (err) {
      msg.textContent = `Not added: ${err.message}`;
    }
  });
  host.append(box);
  label.focus();
}

async function undoAllowed(ids, msg) {
  try {
    for (const id of ids) await api("DELETE", `${API}/allowlist/${id}`);
    await refreshAllowlist();
    msg.textContent = "Undone: nothing was added.";
    if (state.view === "allowlist") renderAllowlist();
  } catch (err) {
    msg.textContent = `Not undone: ${err.message}`;
  }
}

// eslint-disable-next-line no-unused-vars -- replaces app.js's function of the same name
async function addAllowed(event) {
  event.preventDefault();
  const entry = { match: $("allow-match").value, value: $("allow-value").value.trim(), label: $("allow-label").value.trim() };
  const until = $("allow-expires") ? $("allow-expires").value : "";
  if (until) entry.expires_ts = new Date(until).getTime() / 1000;
  try {
    const result = await api("POST", `${API}/allowlist`, { entry });
    state.allowlist = result.entries;
    $("allow-msg").textContent = result.added.length ? "Added." : "Already on the list.";
    $("allow-value").value = "";
    $("allow-label").value = "";
    renderAllowlist();
  } catch (err) {
    $("allow-msg").textContent = `Not added: ${err.message}`;
  }
}

// eslint-disable-next-line no-unused-vars -- replaces app.js's function of the same name
async function removeAllowed(entry) {
  try {
    await api("DELETE", `${API}/allowlist/${entry.id}`);
    await refreshAllowlist();
    $("allow-msg").textContent = `Removed ${entry.label || entry.match}.`;
    renderAllowlist();
  } catch (err) {
    $("allow-msg").textContent = `Not removed: ${err.message}`;
  }
}
