// The command post: every gate of the site on one page. Loaded after app.js. Only a server in
// command-post mode says so in its feed's hello and answers /api/v1/gates; a gate's tablet
// never shows any of this.
// A gate's alerts join app.js's alerts (ids "site/gate/alert"), so the alarm, the siren and
// the open-alert cards work for them as for the gate's own; acknowledging one sends it to
// its gate, which records it and confirms.
"use strict";

const GATE_WORDS = { online: "ONLINE", stale: "NO WORD", offline: "OFFLINE" };
const SENSOR_WORDS = { ok: "OK", silent: "NOT REPORTING", fault: "FAULT", degraded: "DEGRADED", stopped: "STOPPED", starting: "STARTING" };

// The feed's hello said this server is a command post: show its gates.
async function detectCommandPost() {
  await refreshGates();
  document.body.dataset.mode = "command-post";
  $("gates-panel").hidden = false;
}

// A gate alert as the cards and the alarm show it: "sent" counts as acknowledged here (the
// siren stops), and says it waits for the gate's confirmation.
function gateAlertView(a) {
  const view = { ...a, device_ids: [] };
  if (a.ack_state === "sent") {
    view.acked_by = `${a.ack_sent_by} (sent to ${a.gate}, awaiting its confirmation)`;
    view.acked_ts = a.ack_sent_ts;
  }
  return view;
}

async function refreshGates() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const data = await api("GET", `${API}/gates?since=${midnight.getTime() / 1000}`);
  state.commandPost = { name: data.command_post, connected: data.broker_connected };
  state.gates = data.gates;
  // The command post's store is the truth for its gates' alerts: replace, never merge.
  for (const [id, alert] of state.alerts) if (alert.gate && !data.alerts.some((a) => a.id === id) && alert.acknowledged) state.alerts.delete(id);
  for (const a of data.alerts) state.alerts.set(a.id, gateAlertView(a));
}

let gatesRefreshing = null;
function gatesChanged() {
  // A burst of gate events is one refresh.
  if (gatesRefreshing) return;
  gatesRefreshing = setTimeout(() => {
    gatesRefreshing = null;
    refreshGates().then(render).catch(() => {});
  }, 100);
}

function gateLabel(g) {
  return `${g.site} / ${g.gate}`;
}

function gateProblems() {
  if (!state.commandPost) return [];
  const out = [];
  if (!state.commandPost.connected) out.push("the command post cannot reach the broker: gates' news is not arriving");
  for (const g of state.gates || []) {
    if (g.status === "offline") out.push(`${gateLabel(g)} OFFLINE`);
    else if (g.status === "stale") out.push(`${gateLabel(g)} silent for ${fmtSpan(g.age_s)}`);
    else {
      const bad = Object.entries(g.sensors || {}).filter(([, s]) => s.state && s.state !== "ok");
      for (const [name, s] of bad) out.push(`${gateLabel(g)}: ${name} ${SENSOR_WORDS[s.state] || s.state}`);
    }
  }
  return out;
}

// A sensor's own report when it sent one; else when the gate's core last heard from it.
function sensorText(name, s) {
  const heard = s.heard_ts ? ` · heard ${fmtAge(Date.now() / 1000 - s.heard_ts)}` : "";
  if (s.state) return `${name}: ${SENSOR_WORDS[s.state] || s.state}${heard}`;
  return `${name}${heard || ": no report yet"}`;
}

function gateAckText(a) {
  if (a.ack_state === "confirmed") return `Acknowledged by ${a.acked_by} at ${fmtTime(a.acked_ts)}${a.ack_note ? ` – “${a.ack_note}”` : ""}`;
  if (a.ack_state === "sent") return `Sent by ${a.ack_sent_by} at ${fmtTime(a.ack_sent_ts)}, waiting for the gate`;
  return "";
}

function renderGates() {
  if (!state.commandPost) return;
  const list = $("gates");
  clear(list);
  $("gates-empty").hidden = (state.gates || []).length > 0;
  const alerts = [...state.alerts.values()].filter((a) => a.gate);
  for (const g of state.gates || []) {
    const mine = alerts.filter((a) => a.site === g.site && a.gate === g.gate).sort((x, y) => y.raised_ts - x.raised_ts);
    const alarming = mine.filter((a) => !a.acknowledged);
    const open = mine.filter((a) => a.state === "open");
    const acked = mine.filter((a) => a.ack_state !== "none");
    const heard = g.status === "online" ? `heard ${fmtAge(g.age_s)}` : `last heard ${fmtTime(g.heard_ts)} (${fmtSpan(g.age_s)} ago)`;
    const sensors = Object.entries(g.sensors || {}).sort(([x], [y]) => x.localeCompare(y));
    const look = alarming.length ? "alarm" : g.status !== "online" ? "fault" : open.length ? "acked" : "clear";
    list.append(
      el(
        "li",
        { class: "gate-card", dataset: { gate: `${g.site}/${g.gate}`, status: g.status, look } },
        el(
          "div",
          { class: "gate-head" },
          el("h3", { text: gateLabel(g) }),
          el("span", { class: "gate-status", text: GATE_WORDS[g.status] || g.status.toUpperCase() }),
        ),
        el("p", { class: "gate-sub", text: `${alarming.length ? `${alarming.length} ALARM${alarming.length > 1 ? "S" : ""} · ` : ""}${open.length} open · ${heard}` }),
        el(
          "ul",
          { class: "gate-sensors", "aria-label": `${gateLabel(g)} sensors` },
          ...sensors.map(([name, s]) => el("li", { class: "gate-sensor", dataset: { status: s.state || "heard" }, text: sensorText(name, s) })),
        ),
        el(
          "ul",
          { class: "gate-acks", "aria-label": `${gateLabel(g)} acknowledgements` },
          ...acked.slice(0, 3).map((a) => el("li", { dataset: { ack: a.ack_state }, text: `${fmtTime(a.raised_ts)} ${phoneWords(a)}: ${gateAckText(a)}` })),
        ),
      ),
    );
  }
}
