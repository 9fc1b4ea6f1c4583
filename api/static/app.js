// The guard's tablet. No framework, no build step, no third-party origin.
//
// Everything that came from the air (SSIDs, BLE names, reasons, titles) is inserted with
// textContent, never as HTML: a phone can name itself "<img onerror=...>".
"use strict";

const API = "/api/v1";
const RADIOS = ["wifi", "ble", "sdr"];
const RADIO_NAMES = { wifi: "Wi-Fi", ble: "Bluetooth", sdr: "Cellular" };
// Sensors are re-read this often so a silent one turns amber even when no event arrives.
const SENSOR_POLL_MS = 10000;
// If the event stream is down this long the state on screen can no longer be trusted.
const STALE_CONN_MS = 8000;

const state = {
  me: null,
  alerts: new Map(), // id -> alert (open ones and today's)
  sensors: new Map(), // sensor name -> sensor
  zone: null,
  allowlist: [],
  lastEventId: null,
  source: null,
  connDownSince: Date.now(),
  view: "monitor",
  audio: null, // { ctx, osc, gain, timer }
  vibrateTimer: null,
  wakeLock: null,
  shownAlarmId: null,
  cal: { boundary: [], inside: [], samples: {}, timer: null },
};

// -- small helpers ------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function fmtTime(ts) {
  if (ts === null || ts === undefined) return "–";
  // 24-hour time, as guard logs are kept.
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function isSupervisor() {
  return state.me && (state.me.role === "supervisor" || state.me.role === "admin");
}

class HttpError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_err) {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && path !== `${API}/session`) showLogin("Your session ended; sign in again.");
    throw new HttpError(response.status, data);
  }
  return data;
}

// -- sound, vibration, wake lock -----------------------------------------------------------
// The AudioContext is created on the sign-in click: browsers only let a page make sound
// after a user gesture, and at 3 a.m. the alarm must not depend on a later tap.
function unlockAudio() {
  try {
    if (!state.audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      state.audio = { ctx: new Ctx(), osc: null, gain: null, timer: null };
    }
    if (state.audio.ctx.state !== "running") state.audio.ctx.resume();
  } catch (_err) {
    state.audio = null;
  }
  updateSoundButton();
}

function updateSoundButton() {
  const running = state.audio && state.audio.ctx.state === "running";
  $("sound-enable").hidden = Boolean(running);
}

function startSiren() {
  unlockAudio();
  const audio = state.audio;
  if (!audio) {
    document.body.dataset.sound = "unavailable";
    return;
  }
  if (!audio.osc) {
    const osc = audio.ctx.createOscillator();
    const gain = audio.ctx.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.value = 0.25;
    osc.connect(gain).connect(audio.ctx.destination);
    osc.start();
    audio.osc = osc;
    audio.gain = gain;
    let high = true;
    // A two-tone siren: unmistakable, and different from any phone ringtone.
    audio.timer = setInterval(() => {
      high = !high;
      osc.frequency.setValueAtTime(high ? 880 : 660, audio.ctx.currentTime);
      reportSound();
    }, 450);
  }
  reportSound();
}

function reportSound() {
  const audio = state.audio;
  if (!audio || !audio.osc) document.body.dataset.sound = "off";
  else document.body.dataset.sound = audio.ctx.state === "running" ? "on" : "blocked";
  updateSoundButton();
}

function stopSiren() {
  const audio = state.audio;
  if (audio && audio.osc) {
    clearInterval(audio.timer);
    try {
      audio.osc.stop();
    } catch (_err) {
      /* already stopped */
    }
    audio.osc.disconnect();
    audio.osc = null;
    audio.gain = null;
    audio.timer = null;
  }
  document.body.dataset.sound = "off";
}

function startVibration() {
  if (!("vibrate" in navigator) || state.vibrateTimer) return;
  // Only touch devices vibrate, and browsers refuse it before the screen has been touched;
  // asking anyway only fills the console. Sound is the primary alarm.
  if (!navigator.maxTouchPoints) return;
  if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return;
  const buzz = () => navigator.vibrate([700, 300, 700]);
  buzz();
  state.vibrateTimer = setInterval(buzz, 2000);
}

function stopVibration() {
  if (!state.vibrateTimer) return;
  clearInterval(state.vibrateTimer);
  state.vibrateTimer = null;
  navigator.vibrate(0);
}

async function keepAwake() {
  if (!("wakeLock" in navigator) || document.visibilityState !== "visible" || state.wakeLock) return;
  try {
    state.wakeLock = await navigator.wakeLock.request("screen");
    document.body.dataset.wakelock = "on";
    state.wakeLock.addEventListener("release", () => {
      state.wakeLock = null;
      document.body.dataset.wakelock = "off";
    });
  } catch (_err) {
    document.body.dataset.wakelock = "denied";
  }
}

// -- sign in / out -------------------------------------------------------------------------
function showLogin(message) {
  closeStream();
  stopSiren();
  stopVibration();
  state.me = null;
  $("app").hidden = true;
  $("alarm").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  document.body.dataset.state = "login";
  document.body.dataset.role = "";
  const pinTab = $("tab-pin").getAttribute("aria-selected") === "true";
  (pinTab ? $("pin") : $("username")).focus();
}

function selectLoginTab(which) {
  const pin = which === "pin";
  $("tab-pin").setAttribute("aria-selected", String(pin));
  $("tab-password").setAttribute("aria-selected", String(!pin));
  $("login-pin").hidden = !pin;
  $("login-password").hidden = pin;
  (pin ? $("pin") : $("username")).focus();
}

async function onLogin(event) {
  event.preventDefault();
  unlockAudio(); // this click is the user gesture that allows the alarm sound
  const usePin = $("tab-pin").getAttribute("aria-selected") === "true";
  const body = usePin
    ? { pin: $("pin").value }
    : { username: $("username").value.trim(), password: $("password").value };
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    state.me = await api("POST", `${API}/session`, body);
    $("pin").value = "";
    $("password").value = "";
    await startMonitor();
  } catch (err) {
    $("login-error").textContent = err.status === 422 ? "Enter a PIN, or a user name and password." : err.message;
  } finally {
    $("login-submit").disabled = false;
  }
}

async function onLogout() {
  try {
    await api("DELETE", `${API}/session`);
  } catch (_err) {
    /* signed out either way */
  }
  showLogin("Signed out.");
}

// -- the monitor ---------------------------------------------------------------------------
async function startMonitor() {
  $("login").hidden = true;
  $("app").hidden = false;
  document.body.dataset.role = state.me.role;
  $("user").textContent = `${state.me.username} (${state.me.role})`;
  showView("monitor");
  keepAwake();
  openStream();
  await refreshAll();
  $("banner").focus();
}

async function refreshAll() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const since = midnight.getTime() / 1000;
  const [open, today, sensors, zone] = await Promise.all([
    api("GET", `${API}/alerts?state=open&limit=200`),
    api("GET", `${API}/alerts?since=${since}&limit=200`),
    api("GET", `${API}/sensors`),
    api("GET", `${API}/zone`),
  ]);
  // Merge rather than replace: an event may have arrived while these requests were out.
  for (const alert of [...today.items, ...open.items]) mergeAlert(alert);
  setSensors(sensors);
  setZone(zone);
  if (isSupervisor()) await refreshAllowlist();
  render();
}

function progress(a) {
  return (a.state === "resolved" ? 2 : 0) + (a.acknowledged ? 1 : 0);
}

function mergeAlert(alert) {
  const known = state.alerts.get(alert.id);
  if (!known || progress(alert) > progress(known) || (progress(alert) === progress(known) && alert.updated_ts >= known.updated_ts)) {
    state.alerts.set(alert.id, alert);
  }
}

function setSensors(list) {
  state.sensors.clear();
  for (const s of list) state.sensors.set(s.sensor, s);
}

function setZone(zone) {
  state.zone = zone;
  $("zone-name").textContent = zone.name;
  document.title = `Checkpoint – ${zone.name}`;
}

async function pollSensors() {
  if (!state.me) return;
  try {
    setSensors(await api("GET", `${API}/sensors`));
    render();
  } catch (_err) {
    /* the connection indicator tells the guard */
  }
}

// -- live events -----------------------------------------------------------------------------
function openStream() {
  closeStream();
  const url = state.lastEventId === null ? `${API}/events` : `${API}/events?last_event_id=${state.lastEventId}`;
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener("open", () => setConn(true));
  source.addEventListener("hello", (e) => {
    const first = state.lastEventId === null;
    remember(e);
    // On the very first connection, load the present; later ones replay what was missed.
    if (!first) setConn(true);
  });
  source.addEventListener("alert", (e) => {
    remember(e);
    const payload = JSON.parse(e.data);
    mergeAlert(payload.data.alert);
    render();
  });
  source.addEventListener("health", (e) => {
    remember(e);
    const payload = JSON.parse(e.data);
    const s = payload.data;
    const old = state.sensors.get(s.sensor) || {};
    state.sensors.set(s.sensor, { ...old, ...s, status: healthStatus(s.state), age_s: 0 });
    render();
  });
  source.addEventListener("allowlist", (e) => {
    remember(e);
    if (isSupervisor()) refreshAllowlist().then(render);
  });
  source.addEventListener("zone", (e) => {
    remember(e);
    api("GET", `${API}/zone`).then((z) => {
      setZone(z);
      render();
    });
  });
  source.addEventListener("error", () => {
    setConn(false);
    if (source.readyState === EventSource.CLOSED) {
      // The server refused (signed out, restarted): check the session, then resume from
      // the last event seen so nothing is missed.
      setTimeout(async () => {
        if (state.source !== source || !state.me) return;
        try {
          await api("GET", `${API}/session`);
          openStream();
          refreshAll();
        } catch (_err) {
          if (state.me) setTimeout(openStream, 3000);
        }
      }, 2000);
    }
  });
}

function remember(event) {
  if (event.lastEventId) state.lastEventId = Number(event.lastEventId);
}

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
}

function setConn(live) {
  if (live) state.connDownSince = null;
  else if (state.connDownSince === null) state.connDownSince = Date.now();
  document.body.dataset.conn = live ? "live" : "down";
  $("conn").textContent = live ? "live" : "reconnecting…";
  render();
}

function healthStatus(reported) {
  return ["ok", "starting", "degraded", "fault", "stopped"].includes(reported) ? reported : "degraded";
}

// -- rendering -----------------------------------------------------------------------------
function openAlerts() {
  return [...state.alerts.values()].filter((a) => a.state === "open").sort((a, b) => b.raised_ts - a.raised_ts);
}

function sensorProblems() {
  const problems = [];
  for (const radio of RADIOS) {
    const list = [...state.sensors.values()].filter((s) => s.radio === radio);
    for (const s of list) if (s.status !== "ok") problems.push(s);
  }
  return problems;
}

function render() {
  if (!state.me) return;
  const open = openAlerts();
  const unacked = open.filter((a) => !a.acknowledged);
  const faults = sensorProblems();
  const connStale = state.connDownSince !== null && Date.now() - state.connDownSince > STALE_CONN_MS;

  let mode;
  let word;
  let sub;
  if (unacked.length) {
    mode = "alarm";
    word = "ALARM";
    sub = `${unacked.length} unacknowledged alert${unacked.length > 1 ? "s" : ""}`;
  } else if (open.length) {
    mode = "acked";
    word = "ALERT OPEN";
    sub = `acknowledged – ${open[0].handsets} handset${open[0].handsets === 1 ? "" : "s"} still in the zone`;
  } else if (faults.length || connStale) {
    mode = "fault";
    word = connStale ? "NO CONNECTION" : "SENSOR FAULT";
    sub = connStale
      ? "the tablet cannot reach the scanner; the state shown may be old"
      : faults.map((s) => `${RADIO_NAMES[s.radio] || s.radio}: ${s.status}`).join(" · ");
  } else {
    mode = "clear";
    word = "CLEAR";
    sub = "no active handset in the zone";
  }
  document.body.dataset.state = mode;
  if ($("banner-word").textContent !== word) $("banner-word").textContent = word;
  if ($("banner-sub").textContent !== sub) $("banner-sub").textContent = sub;

  renderSensors();
  renderOpen(open);
  renderHistory();
  renderAlarm(unacked);
  if (state.view === "allowlist") renderAllowlist();
}

function renderSensors() {
  const list = $("sensors");
  clear(list);
  const known = [...state.sensors.values()];
  for (const radio of RADIOS) {
    const mine = known.filter((s) => s.radio === radio);
    if (!mine.length) {
      list.append(sensorChip({ sensor: radio, radio, status: "missing", message: "no report from this sensor" }));
      continue;
    }
    for (const s of mine) list.append(sensorChip(s));
  }
  for (const s of known) if (!RADIOS.includes(s.radio)) list.append(sensorChip(s));
}

function sensorChip(s) {
  const radioName = RADIO_NAMES[s.radio] || s.radio;
  // Several sensors on one radio (two Wi-Fi adapters, a replay) are told apart by name.
  const label = s.sensor === s.radio ? radioName : `${radioName} · ${s.sensor}`;
  const words = { ok: "OK", silent: "SILENT", fault: "FAULT", degraded: "DEGRADED", stopped: "STOPPED", starting: "STARTING", missing: "NOT REPORTING" };
  const status = words[s.status] || String(s.status).toUpperCase();
  // The last observation when the source reports it, else at least when it last reported.
  const lastObs = s.last_obs_ts
    ? `heard ${fmtAge(Date.now() / 1000 - s.last_obs_ts)}`
    : s.age_s !== undefined
      ? `reported ${fmtAge(s.age_s)}`
      : "no report yet";
  const detail = s.status === "ok" ? lastObs : s.message || lastObs;
  return el(
    "li",
    { class: "sensor", dataset: { status: s.status, sensor: s.sensor }, "aria-label": `${label}: ${status}. ${detail}` },
    el("span", { class: "s-name", text: label }),
    el("span", { class: "s-state", text: status }),
    el("span", { class: "s-detail", text: detail }),
  );
}

function alertMeta(alert) {
  const sensors = alert.sensors.map((r) => RADIO_NAMES[r] || r).join(", ");
  return `${fmtTime(alert.raised_ts)} · ${alert.handsets} handset${alert.handsets === 1 ? "" : "s"} · ${sensors} · confidence ${Math.round(alert.confidence * 100)}%`;
}

function renderOpen(open) {
  const list = $("open-alerts");
  clear(list);
  $("open-empty").hidden = open.length > 0;
  for (const alert of open) {
    const actions = el("div", { class: "actions" });
    if (!alert.acknowledged) {
      actions.append(el("button", { type: "button", class: "primary", text: "Acknowledge", onclick: () => showAlarmFor(alert.id) }));
    } else {
      actions.append(el("span", { text: `Acknowledged by ${alert.acked_by} at ${fmtTime(alert.acked_ts)}${alert.ack_note ? ` – “${alert.ack_note}”` : ""}` }));
    }
    if (isSupervisor()) {
      actions.append(el("button", { type: "button", class: "allow-device", text: "Allowlist this device", dataset: { alert: alert.id }, onclick: () => allowlistAlert(alert.id, actions) }));
    }
    list.append(
      el(
        "li",
        { class: "alert-card", dataset: { id: alert.id, acked: String(alert.acknowledged) } },
        el("h3", { text: alert.title }),
        el("div", { class: "meta", text: alertMeta(alert) }),
        el("ul", { "aria-label": "Reasons" }, ...alert.reasons.map((r) => el("li", { text: r }))),
        actions,
      ),
    );
  }
}

function renderHistory() {
  const body = $("history");
  clear(body);
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const today = [...state.alerts.values()].filter((a) => a.raised_ts * 1000 >= midnight.getTime()).sort((a, b) => b.raised_ts - a.raised_ts);
  $("history-empty").hidden = today.length > 0;
  for (const a of today) {
    const stateText = a.state === "open" ? "open" : `resolved ${fmtTime(a.resolved_ts)}${a.resolution ? ` (${a.resolution.replace("_", " ")})` : ""}`;
    body.append(
      el(
        "tr",
        {},
        el("td", { text: fmtTime(a.raised_ts) }),
        el("td", { text: a.title }),
        el("td", { class: a.state === "open" ? "state-open" : "", text: stateText }),
        el("td", { text: a.acknowledged ? `${a.acked_by} ${fmtTime(a.acked_ts)}` : "–" }),
      ),
    );
  }
}

// -- the alarm -----------------------------------------------------------------------------
function renderAlarm(unacked) {
  const overlay = $("alarm");
  if (!unacked.length) {
    if (!overlay.hidden) {
      overlay.hidden = true;
      state.shownAlarmId = null;
      stopSiren();
      stopVibration();
      $("banner").focus();
    }
    return;
  }
  // The oldest unacknowledged alert first: acknowledge in the order they happened.
  const alert = unacked.find((a) => a.id === state.shownAlarmId) || unacked[unacked.length - 1];
  const wasHidden = overlay.hidden;
  if (state.shownAlarmId !== alert.id) {
    $("alarm-note").value = "";
    $("alarm-error").textContent = "";
  }
  state.shownAlarmId = alert.id;
  overlay.dataset.id = alert.id;
  $("alarm-title").textContent = alert.title;
  $("alarm-meta").textContent = alertMeta(alert);
  const reasons = $("alarm-reasons");
  clear(reasons);
  for (const reason of alert.reasons) reasons.append(el("li", { text: reason }));
  $("alarm-more").textContent = unacked.length > 1 ? `${unacked.length - 1} more unacknowledged after this one` : "";
  overlay.hidden = false;
  startSiren();
  startVibration();
  if (wasHidden) $("alarm-ack").focus();
}

function showAlarmFor(id) {
  state.shownAlarmId = id;
  render();
}

async function acknowledge() {
  const id = state.shownAlarmId;
  if (!id) return;
  const button = $("alarm-ack");
  button.disabled = true;
  try {
    const alert = await api("POST", `${API}/alerts/${encodeURIComponent(id)}/ack`, { note: $("alarm-note").value });
    mergeAlert(alert);
    state.shownAlarmId = null;
    render();
  } catch (err) {
    $("alarm-error").textContent = `Not acknowledged: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

// -- allowlist (supervisor) ------------------------------------------------------------------
async function refreshAllowlist() {
  const data = await api("GET", `${API}/allowlist`);
  state.allowlist = data.entries;
}

const MATCH_NAMES = { mac: "Wi-Fi MAC", fingerprint: "Wi-Fi fingerprint", ble_identity: "BLE identity" };

function renderAllowlist() {
  const body = $("allow-list");
  clear(body);
  for (const entry of state.allowlist) {
    body.append(
      el(
        "tr",
        {},
        el("td", { text: MATCH_NAMES[entry.match] || entry.match }),
        el("td", { class: "mono", text: entry.value }),
        el("td", { text: entry.label }),
        el("td", { text: `${entry.added_by} ${fmtTime(entry.added_ts)}` }),
        el("td", {}, el("button", { type: "button", class: "small", text: "Remove", "aria-label": `Remove ${entry.value}`, onclick: () => removeAllowed(entry) })),
      ),
    );
  }
  if (!state.allowlist.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "empty", text: "The allowlist is empty." })));
}

async function allowlistAlert(alertId, where) {
  const msg = where ? where.querySelector(".allow-msg") || where.appendChild(el("span", { class: "allow-msg", role: "status" })) : $("alarm-error");
  try {
    const result = await api("POST", `${API}/allowlist`, { alert_id: alertId });
    state.allowlist = result.entries;
    msg.textContent = `Added ${result.added.length} identifier${result.added.length === 1 ? "" : "s"} to the allowlist.`;
  } catch (err) {
    msg.textContent = `Not added: ${err.message}`;
  }
}

async function addAllowed(event) {
  event.preventDefault();
  const entry = { match: $("allow-match").value, value: $("allow-value").value.trim(), label: $("allow-label").value.trim() };
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

async function removeAllowed(entry) {
  const entries = state.allowlist.filter((e) => !(e.match === entry.match && e.value === entry.value)).map((e) => ({ match: e.match, value: e.value, label: e.label }));
  try {
    const result = await api("PUT", `${API}/allowlist`, { entries });
    state.allowlist = result.entries;
    $("allow-msg").textContent = `Removed ${entry.value}.`;
    renderAllowlist();
  } catch (err) {
    $("allow-msg").textContent = `Not removed: ${err.message}`;
  }
}

// -- zone calibration walk (supervisor) ------------------------------------------------------
const RADIO_KEYS = ["wifi", "ble", "sdr"];

function fillZoneForm() {
  const zone = state.zone;
  if (!zone) return;
  const form = $("zone-form");
  $("zone-input-name").value = zone.name;
  for (const radio of RADIO_KEYS) {
    const cal = zone.calibration[radio];
    form.elements[`${radio}_boundary`].value = cal ? String(cal.boundary_dbm) : "";
    form.elements[`${radio}_inside`].value = cal ? String(cal.inside_dbm) : "";
    $(`derived-${radio}`).textContent = cal ? `${cal.enter_dbm} / ${cal.exit_dbm}` : "defaults";
  }
  state.cal.samples = {};
  for (const radio of RADIO_KEYS) {
    const cal = zone.calibration[radio];
    if (cal) state.cal.samples[radio] = { boundary: cal.boundary_samples.slice(), inside: cal.inside_samples.slice() };
  }
  state.cal.boundary = [];
  state.cal.inside = [];
  showSamples();
}

async function loadCalDevices() {
  const since = Date.now() / 1000 - 120;
  const select = $("cal-device");
  const chosen = select.value;
  const page = await api("GET", `${API}/devices?since=${since}&limit=100`);
  clear(select);
  select.append(el("option", { value: "", text: "(pick a device seen in the last 2 minutes)" }));
  for (const d of page.items) {
    const ids = [...d.identifiers.macs, ...d.identifiers.ble].slice(0, 1).join("");
    const label = `${d.vendor || d.kind} ${ids} (${d.last_rssi === null ? "–" : Math.round(d.last_rssi)} dBm)`;
    select.append(el("option", { value: d.id, text: label, dataset: { rssi: d.last_rssi === null ? "" : String(d.last_rssi), radios: d.radios.join(",") } }));
  }
  select.value = chosen;
  const option = select.selectedOptions[0];
  $("cal-rssi").textContent = option && option.dataset.rssi ? String(Math.round(Number(option.dataset.rssi))) : "–";
}

function currentReading() {
  const option = $("cal-device").selectedOptions[0];
  if (!option || !option.value || !option.dataset.rssi) return null;
  return Number(option.dataset.rssi);
}

function median(xs) {
  if (!xs.length) return null;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function showSamples() {
  const b = median(state.cal.boundary);
  const i = median(state.cal.inside);
  $("cal-samples").textContent =
    `Boundary: ${state.cal.boundary.length} readings${b === null ? "" : `, median ${Math.round(b)} dBm`}. ` +
    `Inside: ${state.cal.inside.length} readings${i === null ? "" : `, median ${Math.round(i)} dBm`}.`;
  return { b, i };
}

function record(kind) {
  const value = currentReading();
  if (value === null) {
    $("zone-msg").textContent = "Pick the phone first; it must have been heard recently.";
    return;
  }
  state.cal[kind].push(value);
  showSamples();
}

function walkedRadio() {
  const option = $("cal-device").selectedOptions[0];
  return option && option.dataset.radios && !option.dataset.radios.includes("wifi") ? "ble" : "wifi";
}

function useReadings() {
  const { b, i } = showSamples();
  if (b === null || i === null) {
    $("zone-msg").textContent = "Record boundary and inside readings first.";
    return;
  }
  const radio = walkedRadio();
  const form = $("zone-form");
  form.elements[`${radio}_boundary`].value = String(Math.round(b));
  form.elements[`${radio}_inside`].value = String(Math.round(i));
  state.cal.samples[radio] = { boundary: state.cal.boundary.slice(), inside: state.cal.inside.slice() };
  $("zone-msg").textContent = `${RADIO_NAMES[radio]}: boundary ${Math.round(b)} dBm, inside ${Math.round(i)} dBm. Save to apply.`;
}

async function saveZone(event) {
  event.preventDefault();
  const form = $("zone-form");
  const calibration = {};
  for (const radio of RADIO_KEYS) {
    const boundary = form.elements[`${radio}_boundary`].value;
    const inside = form.elements[`${radio}_inside`].value;
    if (boundary === "" && inside === "") continue;
    if (boundary === "" || inside === "") {
      $("zone-msg").textContent = `${RADIO_NAMES[radio]}: give both levels, or neither.`;
      return;
    }
    const walk = state.cal.samples[radio] || { boundary: [], inside: [] };
    calibration[radio] = { boundary_dbm: Number(boundary), inside_dbm: Number(inside), boundary_samples: walk.boundary, inside_samples: walk.inside };
  }
  try {
    const zone = await api("PUT", `${API}/zone`, { name: $("zone-input-name").value.trim(), calibration });
    setZone(zone);
    fillZoneForm();
    $("zone-msg").textContent = `Saved (version ${zone.version}).`;
  } catch (err) {
    $("zone-msg").textContent = `Not saved: ${err.message}`;
  }
}

// -- views -----------------------------------------------------------------------------------
function showView(name) {
  if (name !== "monitor" && !isSupervisor()) name = "monitor";
  state.view = name;
  for (const button of $("nav").querySelectorAll("button")) {
    if (button.dataset.view === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const view of ["monitor", "allowlist", "calibration"]) $(`view-${view}`).hidden = view !== name;
  clearInterval(state.cal.timer);
  state.cal.timer = null;
  if (name === "allowlist") refreshAllowlist().then(renderAllowlist).catch(() => {});
  if (name === "calibration") {
    fillZoneForm();
    loadCalDevices().catch(() => {});
    state.cal.timer = setInterval(() => loadCalDevices().catch(() => {}), 1000);
  }
}

// -- start -------------------------------------------------------------------------------------
function wire() {
  $("login-form").addEventListener("submit", onLogin);
  $("tab-pin").addEventListener("click", () => selectLoginTab("pin"));
  $("tab-password").addEventListener("click", () => selectLoginTab("password"));
  for (const tab of [$("tab-pin"), $("tab-password")]) {
    tab.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft" || e.key === "ArrowRight") selectLoginTab(tab.id === "tab-pin" ? "password" : "pin");
    });
  }
  for (const key of document.querySelectorAll(".pinpad button")) {
    key.addEventListener("click", () => {
      const pin = $("pin");
      const digit = key.dataset.digit;
      if (digit === "clear") pin.value = "";
      else if (digit === "back") pin.value = pin.value.slice(0, -1);
      else if (pin.value.length < 12) pin.value += digit;
      unlockAudio();
    });
  }
  $("logout").addEventListener("click", onLogout);
  $("alarm-ack").addEventListener("click", acknowledge);
  $("alarm-note").addEventListener("keydown", (e) => {
    if (e.key === "Enter") acknowledge();
  });
  $("alarm-allow").addEventListener("click", () => {
    if (state.shownAlarmId) allowlistAlert(state.shownAlarmId, null);
  });
  // Keep keyboard focus inside the alarm while it is up.
  $("alarm").addEventListener("keydown", (e) => {
    if (e.key !== "Tab") return;
    const focusable = [...$("alarm").querySelectorAll("button, input")].filter((n) => n.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      last.focus();
      e.preventDefault();
    } else if (!e.shiftKey && document.activeElement === last) {
      first.focus();
      e.preventDefault();
    }
  });
  $("sound-enable").addEventListener("click", () => {
    unlockAudio();
    render();
    reportSound();
  });
  // Any tap also unlocks audio, for a tablet that reloaded with its session still valid.
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  for (const button of $("nav").querySelectorAll("button")) button.addEventListener("click", () => showView(button.dataset.view));
  $("allow-form").addEventListener("submit", addAllowed);
  $("cal-device").addEventListener("change", () => loadCalDevices().catch(() => {}));
  $("cal-boundary").addEventListener("click", () => record("boundary"));
  $("cal-inside").addEventListener("click", () => record("inside"));
  $("cal-suggest").addEventListener("click", useReadings);
  $("cal-reset").addEventListener("click", () => {
    state.cal.boundary = [];
    state.cal.inside = [];
    showSamples();
  });
  $("zone-form").addEventListener("submit", saveZone);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") keepAwake();
  });
  setInterval(pollSensors, SENSOR_POLL_MS);
  setInterval(render, 2000); // ages and the connection timeout move even without events
}

async function resume() {
  try {
    state.me = await api("GET", `${API}/session`);
    await startMonitor();
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      showLogin("");
      return;
    }
    // The Pi is restarting or out of reach: say so, and keep trying.
    showLogin("Cannot reach the scanner. Retrying…");
    setTimeout(() => {
      if (!state.me) resume();
    }, 5000);
  }
}

async function boot() {
  wire();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
  await resume();
}

document.addEventListener("DOMContentLoaded", boot);
