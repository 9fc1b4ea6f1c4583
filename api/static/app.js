// The guard's tablet. No framework, no build step, no third-party origin.
//
// Everything that came from the air (SSIDs, BLE names, reasons, titles) is inserted with
// textContent, never as HTML: a phone can name itself "<img onerror=...>".
//
// What the guard sees, in order of precedence:
//   NO CONNECTION (full screen)  the live feed's heartbeat stopped: nothing shown can be trusted
//   sign-in over the alarm        the session ended while an alarm is latched: it keeps sounding
//   ALARM (full screen)           an alert nobody acknowledged, open or already left: it latches
//   the monitor                   banner CLEAR / ALERT OPEN, amber DEGRADED strip with reasons
"use strict";

const API = "/api/v1";
const RADIOS = ["wifi", "ble", "sdr"];
const RADIO_NAMES = { wifi: "Wi-Fi", ble: "Bluetooth", sdr: "Cellular", store: "Store" };
// How the radios read to a guard: what was heard, not how.
const HEARD_ON = { wifi: "Wi-Fi", ble: "Bluetooth", sdr: "the mobile network" };
// Health is re-read this often so a silent sensor or a dead core turns amber without an event.
const HEALTH_POLL_MS = 5000;
// The server's heartbeat interval until its hello says otherwise.
const DEFAULT_HEARTBEAT_S = 2;
// Missing this many heartbeats in a row means the feed is dead or frozen (a stalled TCP
// connection never reports itself): say NO CONNECTION rather than show an old state as live.
const MISSED_BEATS = 3;
// Never sooner than this: one slow beat on a busy Wi-Fi link is not an outage.
const MIN_WATCHDOG_MS = 5000;
// While the feed is dead, a fresh connection is tried this often.
const RECONNECT_MS = 3000;
const SILENCE_MIN = 5;
// While the tablet is cut off it beeps this often.
const NO_CONNECTION_CHIRP_MS = 20000;
// The Pi answers in milliseconds; ten seconds is a link that is not coming back soon.
const REQUEST_TIMEOUT_MS = 10000;
const SIREN_TEST_MS = 3000;

const state = {
  me: null,
  kiosk: null,
  alerts: new Map(), // id -> alert (today's, the open ones, and every unacknowledged one)
  sensors: new Map(), // sensor name -> sensor
  health: null, // { status, problems } from /api/v1/health, or { status: "unknown" }
  zone: null,
  allowlist: [],
  kiosks: [],
  lastEventId: null,
  source: null,
  restQueued: false, // the lists are drawn a frame after an alarm (renderAlarmFirst)
  heartbeatMs: DEFAULT_HEARTBEAT_S * 1000,
  lastData: null, // Date.now() of the last thing the feed delivered
  lastReconnect: 0,
  lastChirp: 0,
  noConnection: false,
  offlineBoot: false,
  sessionEnded: false,
  view: "monitor",
  audio: null, // { ctx, osc, gain, timer }
  volume: 1,
  testing: null,
  silence: null, // { until, ids: Set, by }
  vibrateTimer: null,
  wakeLock: null,
  shownAlarmId: null,
  cal: { boundary: [], inside: [], samples: {}, timer: null },
  commandPost: null, // { name, connected } on a command post (gates.js), else null
  gates: [],
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

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function fmtTime(ts) {
  if (ts === null || ts === undefined) return "–";
  // 24-hour time, as guard logs are kept.
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

// No-break spaces inside a span ("1\u00a0min\u00a015\u00a0s"): a line never ends between a
// number and its unit.
function fmtSpan(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}\u00a0s`;
  if (s < 3600) return `${Math.floor(s / 60)}\u00a0min\u00a0${s % 60}\u00a0s`;
  return `${Math.floor(s / 3600)}\u00a0h\u00a0${Math.floor((s % 3600) / 60)}\u00a0min`;
}

function forSpan(seconds) {
  return seconds < 2 ? "just\u00a0now" : `for\u00a0${fmtSpan(seconds)}`;
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function words(list) {
  if (list.length <= 1) return list.join("");
  return `${list.slice(0, -1).join(", ")} and ${list[list.length - 1]}`;
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
  // A request on a frozen link never ends by itself; give up so polls do not pile up.
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
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
    if (response.status === 401 && path !== `${API}/session`) sessionEnded("Your session ended; sign in again.");
    throw new HttpError(response.status, data);
  }
  return data;
}

// -- sound, vibration, wake lock -----------------------------------------------------------
// The AudioContext is created on the sign-in click: browsers only let a page make sound
// after a user gesture. A tablet that reloads (a kiosk at 3 a.m.) has had no gesture yet: the
// page then says so everywhere until someone taps, the alarm overlay most of all.
function unlockAudio() {
  try {
    if (!state.audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      const ctx = new Ctx();
      state.audio = { ctx, osc: null, gain: null, timer: null };
      ctx.addEventListener("statechange", () => {
        reportSound();
        render();
      });
    }
    if (state.audio.ctx.state !== "running") state.audio.ctx.resume().catch(() => {});
  } catch (_err) {
    state.audio = null;
  }
  reportSound();
}

function soundArmed() {
  return Boolean(state.audio && state.audio.ctx.state === "running");
}

function sirenLevel() {
  return 0.3 * state.volume;
}

function startSiren() {
  if (!state.audio) unlockAudio();
  const audio = state.audio;
  if (!audio) {
    reportSound();
    return;
  }
  if (!audio.osc) {
    const osc = audio.ctx.createOscillator();
    const gain = audio.ctx.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.value = sirenLevel();
    osc.connect(gain).connect(audio.ctx.destination);
    osc.start();
    audio.osc = osc;
    audio.gain = gain;
    let high = true;
    // A two-tone siren: unmistakable, and different from any phone ringtone.
    audio.timer = setInterval(() => {
      high = !high;
      osc.frequency.setValueAtTime(high ? 880 : 660, audio.ctx.currentTime);
    }, 450);
  }
  reportSound();
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
  reportSound();
}

// body[data-sound]: on (sounding), blocked (should sound, the browser will not let it),
// off (nothing to sound), unavailable (no Web Audio). body[data-armed]: could it sound now?
function reportSound() {
  const audio = state.audio;
  const armed = soundArmed();
  document.body.dataset.armed = armed ? "yes" : "no";
  if (!audio) document.body.dataset.sound = window.AudioContext || window.webkitAudioContext ? "off" : "unavailable";
  else if (!audio.osc) document.body.dataset.sound = "off";
  else document.body.dataset.sound = armed ? "on" : "blocked";
}

function setVolume(percent) {
  state.volume = Math.min(1, Math.max(0.1, percent / 100));
  try {
    localStorage.setItem("checkpoint-volume", String(Math.round(state.volume * 100)));
  } catch (_err) {
    /* private mode: the volume lasts until reload */
  }
  if (state.audio && state.audio.gain) state.audio.gain.gain.value = sirenLevel();
}

async function testSiren() {
  unlockAudio();
  clearTimeout(state.testing);
  state.testing = setTimeout(() => {
    state.testing = null;
    render();
  }, SIREN_TEST_MS);
  render();
  $("siren-msg").textContent = soundArmed() ? "Siren test: you should hear it now." : "Siren test: sound is blocked; tap “enable sound”.";
  try {
    await api("POST", `${API}/alarm/test`);
  } catch (_err) {
    /* the test still sounds; only its log entry is missing */
  }
}

// A short low beep: a guard who is not looking at the screen learns that it went blind. Quiet
// and rare enough not to be taken for the alarm.
function chirp() {
  const audio = state.audio;
  if (!audio || !soundArmed()) return;
  const osc = audio.ctx.createOscillator();
  const gain = audio.ctx.createGain();
  osc.frequency.value = 440;
  gain.gain.value = 0.15 * state.volume;
  osc.connect(gain).connect(audio.ctx.destination);
  osc.start();
  osc.stop(audio.ctx.currentTime + 0.25);
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
function latchedAlarms() {
  return [...state.alerts.values()].filter((a) => !a.acknowledged).sort((a, b) => a.raised_ts - b.raised_ts);
}

// The session is gone (expired, signed out elsewhere, disabled). With an alarm latched, the
// alarm stays on screen and sounding, and the sign-in form comes up on top of it.
function sessionEnded(message) {
  if (!state.me) return;
  if (latchedAlarms().length) {
    state.sessionEnded = true;
    closeStream();
    showLogin(message, true);
    render();
    return;
  }
  showLogin(message, false);
}

function showLogin(message, overAlarm) {
  closeStream();
  $("login").hidden = false;
  $("login").classList.toggle("over", Boolean(overAlarm));
  $("login-over").hidden = !overAlarm;
  $("login-error").textContent = message || "";
  if (!overAlarm) {
    stopSiren();
    stopVibration();
    state.me = null;
    state.sessionEnded = false;
    state.alerts.clear();
    $("app").hidden = true;
    $("alarm").hidden = true;
    document.body.dataset.state = "login";
    document.body.dataset.role = "";
  }
  applyInert();
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
    state.sessionEnded = false;
    await startMonitor();
  } catch (err) {
    $("login-error").textContent = err.status === 422 ? "Enter a PIN, or a user name and password." : err.message;
  } finally {
    $("login-submit").disabled = false;
  }
}

function askSignOut() {
  const text = state.kiosk
    ? `This tablet is the wall screen “${state.kiosk.label}”. Signing out removes it as a wall screen: it stops watching until a supervisor sets it up again.`
    : "Sign out? This tablet stops showing alarms until someone signs in again.";
  $("confirm-text").textContent = text;
  $("confirm").hidden = false;
  applyInert();
  $("confirm-no").focus();
}

function closeConfirm() {
  $("confirm").hidden = true;
  applyInert();
  $("logout").focus();
}

async function onLogout() {
  $("confirm").hidden = true;
  try {
    await api("DELETE", `${API}/session`);
    if (state.kiosk) await api("DELETE", `${API}/kiosk/current`);
  } catch (_err) {
    /* signed out either way */
  }
  state.kiosk = null;
  showLogin("Signed out.", false);
  // A kiosk tablet signed in as a person falls back to its kiosk credential.
  resume(true);
}

// -- the monitor ---------------------------------------------------------------------------
async function startMonitor() {
  $("login").hidden = true;
  $("login").classList.remove("over");
  $("app").hidden = false;
  // At once, not after the refresh: a latched alarm under the sign-in must take taps now.
  applyInert();
  document.body.dataset.role = state.me.role;
  try {
    state.kiosk = (await api("GET", `${API}/kiosk/current`)).kiosk;
  } catch (_err) {
    state.kiosk = null;
  }
  document.body.dataset.kiosk = state.kiosk ? "yes" : "no";
  $("user").textContent = state.kiosk ? `wall screen “${state.kiosk.label}”` : `${state.me.username} (${state.me.role})`;
  showView(state.view);
  keepAwake();
  openStream();
  await refreshAll();
  applyInert();
  if ($("alarm").hidden) $("banner").focus();
  else $("alarm-ack").focus();
}

async function refreshAll() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const since = midnight.getTime() / 1000;
  const [open, today, latched, zone] = await Promise.all([
    api("GET", `${API}/alerts?state=open&limit=200`),
    api("GET", `${API}/alerts?since=${since}&limit=200`),
    api("GET", `${API}/alerts?acknowledged=false&limit=200`),
    api("GET", `${API}/zone`),
  ]);
  // Merge rather than replace: an event may have arrived while these requests were out.
  for (const alert of [...today.items, ...open.items, ...latched.items]) mergeAlert(alert);
  setZone(zone);
  await refreshHealth();
  if (state.commandPost) await refreshGates();
  if (isSupervisor()) await refreshAllowlist();
  render();
}

function progress(a) {
  return (a.state === "resolved" ? 2 : 0) + (a.acknowledged ? 1 : 0);
}

function mergeAlert(alert) {
  const known = state.alerts.get(alert.id);
  // Newer wins; at the same time, more progress (acknowledged, resolved) wins. An alert the
  // core re-arms (acknowledged, then a new handset) is newer, so it alarms again.
  if (!known || alert.updated_ts > known.updated_ts || (alert.updated_ts === known.updated_ts && progress(alert) >= progress(known))) {
    state.alerts.set(alert.id, alert);
  }
}

function setZone(zone) {
  state.zone = zone;
  $("zone-name").textContent = zone.name;
  document.title = `Checkpoint – ${zone.name}`;
}

async function refreshHealth() {
  try {
    const health = await api("GET", `${API}/health`);
    state.sensors.clear();
    for (const s of Object.values(health.sensors)) state.sensors.set(s.sensor, s);
    state.health = { status: health.status, problems: health.problems };
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) return;
    // The scanner answers the feed but not its health: that is trouble in itself.
    state.health = { status: "unknown", problems: [err instanceof HttpError ? `the scanner cannot report its health (${err.message})` : "the scanner's health cannot be read"] };
  }
}

async function pollHealth() {
  if (!state.me || state.sessionEnded) return;
  await refreshHealth();
  // A gate that fell silent sends nothing: only a poll shows it going stale.
  if (state.commandPost) await refreshGates().catch(() => {});
  render();
}

// -- live events and the watchdog ------------------------------------------------------------
function fed() {
  state.lastData = Date.now();
  if (state.noConnection) {
    state.noConnection = false;
    render();
  }
}

function openStream() {
  closeStream();
  state.lastReconnect = Date.now();
  if (state.lastData === null) state.lastData = Date.now();
  const url = state.lastEventId === null ? `${API}/events` : `${API}/events?last_event_id=${state.lastEventId}`;
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener("hello", (e) => {
    const first = state.lastEventId === null;
    remember(e);
    const payload = JSON.parse(e.data);
    if (payload.data && payload.data.heartbeat_s) state.heartbeatMs = payload.data.heartbeat_s * 1000;
    // A command post's feed says so: its page adds every gate (gates.js).
    if (payload.data && payload.data.mode === "command-post" && !state.commandPost) detectCommandPost().then(render).catch(() => {});
    fed();
    setConn(true);
    // After an outage the present is re-read too: health and anything the replay cannot show.
    if (!first) refreshAll().catch(() => {});
  });
  source.addEventListener("heartbeat", () => {
    fed();
    setConn(true);
  });
  source.addEventListener("alert", (e) => {
    remember(e);
    fed();
    const payload = JSON.parse(e.data);
    mergeAlert(payload.data.alert);
    renderAlarmFirst();
  });
  source.addEventListener("health", (e) => {
    remember(e);
    fed();
    pollHealth();
  });
  source.addEventListener("gate", (e) => {
    remember(e);
    fed();
    gatesChanged();
  });
  source.addEventListener("allowlist", (e) => {
    remember(e);
    fed();
    if (isSupervisor()) refreshAllowlist().then(render);
  });
  source.addEventListener("zone", (e) => {
    remember(e);
    fed();
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
        if (state.source !== source || !state.me || state.sessionEnded) return;
        try {
          await api("GET", `${API}/session`);
          openStream();
        } catch (_err) {
          /* a 401 brought up the sign-in; otherwise the watchdog retries */
        }
      }, 1000);
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
  document.body.dataset.conn = live ? "live" : "down";
  setText($("conn"), live ? "live" : "reconnecting…");
}

function watchdogMs() {
  return Math.max(MIN_WATCHDOG_MS, MISSED_BEATS * state.heartbeatMs);
}

// Once a second: a feed that went quiet for longer than a few heartbeats is dead, even if the
// socket still looks open (a frozen link, a proxy that stopped forwarding).
function watchdog() {
  if (!state.me || state.sessionEnded) return;
  const quiet = state.lastData === null ? 0 : Date.now() - state.lastData;
  const dead = quiet > watchdogMs();
  if (dead !== state.noConnection) {
    state.noConnection = dead;
    if (dead) setConn(false);
    render();
  }
  if (dead && Date.now() - state.lastReconnect > RECONNECT_MS) openStream();
  if (dead) {
    renderNoConnection();
    if (Date.now() - state.lastChirp > NO_CONNECTION_CHIRP_MS) {
      state.lastChirp = Date.now();
      chirp();
    }
  }
}

// -- rendering -----------------------------------------------------------------------------
function openAlerts() {
  return [...state.alerts.values()].filter((a) => a.state === "open").sort((a, b) => b.raised_ts - a.raised_ts);
}

function degradedReasons() {
  const gates = state.commandPost ? gateProblems() : [];
  if (!state.health) return gates;
  // A command post has no radios of its own: its gates' health is what counts.
  if (state.health.status === "ok" || state.commandPost) return gates;
  return state.health.problems.length ? state.health.problems : [`scanner status: ${state.health.status}`];
}

function applyInert() {
  // Only the top layer takes focus or clicks: nothing focusable hides behind an overlay.
  const noconn = !$("noconn").hidden;
  const confirm = !$("confirm").hidden;
  const loginOver = !$("login").hidden && $("login").classList.contains("over");
  const alarm = !$("alarm").hidden;
  $("app").inert = noconn || confirm || loginOver || alarm;
  $("alarm").inert = noconn || confirm || loginOver;
  $("confirm").inert = noconn;
  $("login").inert = noconn;
}

function render() {
  const open = renderTop();
  if (open === null) return;
  renderRest(open);
}

// An alert from the live feed: the banner, the alarm overlay and the siren in this task, the
// lists and the sensor strip (whose cost grows with the day's alerts) in a later frame, so the
// guard's alarm is painted first. Two frames on: a task queued right after the first frame's
// paint runs before them.
function renderAlarmFirst() {
  const open = renderTop();
  if (open === null || state.restQueued) return;
  state.restQueued = true;
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      state.restQueued = false;
      render();
    }),
  );
}

// What says whether to look up: the banner, the degraded strip, the alarm and its sound, the
// lost-connection cover. Returns the open alerts (null when nobody is signed in).
function renderTop() {
  if (!state.me) return null;
  const open = openAlerts();
  const latched = latchedAlarms();
  const reasons = degradedReasons();

  let mode;
  let word;
  let sub;
  if (latched.length) {
    mode = "alarm";
    word = "ALARM";
    sub = `${latched.length} alarm${latched.length > 1 ? "s" : ""} not acknowledged`;
  } else if (open.length) {
    mode = "acked";
    word = "ALERT OPEN";
    const phones = open.reduce((n, a) => n + a.handsets, 0);
    sub = `acknowledged – ${phones} phone${phones === 1 ? "" : "s"} still inside`;
  } else if (reasons.length) {
    mode = "fault";
    word = "DEGRADED";
    sub = reasons.join(" · ");
  } else {
    mode = "clear";
    word = "CLEAR";
    sub = state.commandPost ? "no active phone at any gate" : "no active phone in the zone";
  }
  document.body.dataset.state = mode;
  document.body.dataset.health = reasons.length ? "degraded" : "ok";
  setText($("banner-word"), word);
  setText($("banner-sub"), sub);

  // Degraded is never green: while an alert holds the banner, the amber strip says it.
  $("degraded").hidden = !reasons.length || mode === "fault";
  setText($("degraded-text"), reasons.join(" · "));

  renderAlarm(latched, reasons);
  renderSound(latched);
  renderNoConnection();
  return open;
}

function renderRest(open) {
  renderSensors();
  if (state.commandPost) renderGates();
  renderOpen(open);
  renderHistory();
  if (state.view === "allowlist") renderAllowlist();
}

function renderSound(latched) {
  const armed = soundArmed();
  const silenced = silenceActive(latched);
  const shouldSound = (latched.length > 0 && !silenced) || state.testing !== null;
  if (shouldSound) {
    startSiren();
    if (latched.length) startVibration();
  } else {
    stopSiren();
    stopVibration();
  }
  // The page warns whenever the alarm could not be heard.
  $("sound-warn").hidden = armed;
  setText($("sound-warn-text"), state.audio ? "Alarm sound is BLOCKED by the browser on this tablet." : "Alarm sound is OFF on this tablet.");
  $("alarm-sound").hidden = armed;
}

function silenceActive(latched) {
  const s = state.silence;
  if (!s) return false;
  // A silence covers the alarms it was given for; a new one sounds at once.
  if (Date.now() >= s.until || latched.some((a) => !s.ids.has(a.id))) {
    state.silence = null;
    return false;
  }
  return true;
}

function renderNoConnection() {
  const node = $("noconn");
  const show = state.noConnection || state.offlineBoot;
  if (node.hidden === show) {
    node.hidden = !show;
    document.body.dataset.conn = show ? "dead" : document.body.dataset.conn;
    applyInert();
  }
  if (!show) return;
  const since = state.lastData;
  setText(
    $("noconn-since"),
    since === null ? "No data from the scanner since this page opened." : `Last data from the scanner ${fmtTime(since / 1000)} (${fmtSpan((Date.now() - since) / 1000)} ago). What was on screen then may have changed.`,
  );
}

// Chips are made once per sensor and changed in place: the page renders every second, and a
// rebuilt list costs the tablet layout work and takes the nodes a screen reader is on.
function renderSensors() {
  const list = $("sensors");
  const known = [...state.sensors.values()];
  const ordered = [...RADIOS.flatMap((radio) => known.filter((k) => k.radio === radio)), ...known.filter((k) => !RADIOS.includes(k.radio))];
  const chips = new Map([...list.children].map((chip) => [chip.dataset.sensor, chip]));
  let next = list.firstElementChild;
  for (const s of ordered) {
    const chip = chips.get(s.sensor) || sensorChip(s.sensor);
    chips.delete(s.sensor);
    fillChip(chip, s);
    if (chip === next) next = next.nextElementSibling;
    else list.insertBefore(chip, next);
  }
  for (const gone of chips.values()) gone.remove();
}

function sensorChip(sensor) {
  return el(
    "li",
    { class: "sensor", dataset: { sensor } },
    el("span", { class: "s-name" }),
    el("span", { class: "s-state" }),
    el("span", { class: "s-detail" }),
  );
}

function fillChip(chip, s) {
  const radioName = RADIO_NAMES[s.radio] || s.radio;
  // Several sensors on one radio (two Wi-Fi adapters, a replay) are told apart by name.
  const label = s.sensor === s.radio ? radioName : `${radioName} · ${s.sensor}`;
  const wordsFor = { ok: "OK", silent: "NOT REPORTING", fault: "FAULT", degraded: "DEGRADED", stopped: "STOPPED", starting: "STARTING" };
  const status = wordsFor[s.status] || String(s.status).toUpperCase();
  // The last observation when the source reports it, else at least when it last reported.
  const lastObs = s.last_obs_ts ? `heard ${fmtAge(Date.now() / 1000 - s.last_obs_ts)}` : `reported ${fmtAge(s.age_s)}`;
  let detail = s.status === "ok" ? lastObs : s.status === "silent" ? `last report ${fmtAge(s.age_s)}` : s.message || lastObs;
  const region = s.detail && typeof s.detail.region === "string" ? s.detail.region : null;
  if (region) detail = `region ${region.toUpperCase()} · ${detail}`;
  if (chip.dataset.status !== s.status) chip.dataset.status = s.status;
  const aria = `${label}: ${status}. ${detail}`;
  if (chip.getAttribute("aria-label") !== aria) chip.setAttribute("aria-label", aria);
  const [name, word, said] = chip.children;
  setText(name, label);
  setText(word, status);
  setText(said, detail);
}

// -- alerts in a guard's words -----------------------------------------------------------------
function phoneWords(alert) {
  if (alert.kind === "unidentified_transmitter") return "Unknown transmitter";
  return alert.handsets > 1 ? `${alert.handsets} phones` : "Phone";
}

function heardOn(alert) {
  const names = alert.sensors.map((r) => HEARD_ON[r] || r);
  return names.length ? ` on ${words(names)}` : "";
}

function insideFor(alert) {
  if (alert.state === "resolved") return alert.duration_s || (alert.resolved_ts - alert.raised_ts);
  return Math.max(alert.duration_s || 0, Date.now() / 1000 - alert.raised_ts);
}

// "Phone inside, heard on Wi-Fi and Bluetooth for 40 s"; once it left, it says so.
function alertHeadline(alert) {
  // On a command post the gate comes first: it is where the guard must look.
  const who = alert.gate ? `${alert.site} / ${alert.gate}: ${phoneWords(alert)}` : phoneWords(alert);
  if (alert.state === "resolved") return `${who} was inside, heard${heardOn(alert)} ${forSpan(insideFor(alert))}`;
  return `${who} inside, heard${heardOn(alert)} ${forSpan(insideFor(alert))}`;
}

function alertWhen(alert) {
  const now = Date.now() / 1000;
  const started = `Alarm at ${fmtTime(alert.raised_ts)}, ${now - alert.raised_ts < 2 ? "just now" : `${fmtSpan(now - alert.raised_ts)} ago`}`;
  if (alert.state === "resolved") return `${started}. It left ${fmtSpan(now - alert.resolved_ts)} ago.`;
  return `${started}.`;
}

function alertJargon(alert) {
  const radios = alert.sensors.map((r) => RADIO_NAMES[r] || r).join(", ");
  return [...alert.reasons, `radios: ${radios}; confidence ${Math.round(alert.confidence * 100)}%; alert ${alert.id}`];
}

function renderOpen(open) {
  const list = $("open-alerts");
  clear(list);
  $("open-empty").hidden = open.length > 0;
  // Degraded is never "clear": a scanner that cannot hear everything cannot say so.
  setText($("open-empty"), degradedReasons().length ? "No open alert – but the scanner is degraded and may miss phones." : "None. The zone is clear.");
  for (const alert of open) {
    const actions = el("div", { class: "actions" });
    if (!alert.acknowledged) {
      actions.append(el("button", { type: "button", class: "primary", text: "Acknowledge", onclick: () => showAlarmFor(alert.id) }));
    } else {
      actions.append(el("span", { text: `Acknowledged by ${alert.acked_by} at ${fmtTime(alert.acked_ts)}${alert.ack_note ? ` – “${alert.ack_note}”` : ""}` }));
    }
    if (isSupervisor() && !alert.gate) {
      actions.append(el("button", { type: "button", class: "allow-device", text: "Allowlist this device", dataset: { alert: alert.id }, onclick: () => allowlistAlert(alert.id, actions) }));
    }
    list.append(
      el(
        "li",
        { class: "alert-card", dataset: { id: alert.id, acked: String(alert.acknowledged) } },
        el("h3", { text: alertHeadline(alert) }),
        el("div", { class: "meta", text: alertWhen(alert) }),
        el("details", {}, el("summary", { text: "Radio details" }), el("ul", { "aria-label": "Radio details" }, ...alertJargon(alert).map((r) => el("li", { text: r })))),
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
    const stateText = a.state === "open" ? "inside" : `left ${fmtTime(a.resolved_ts)}`;
    body.append(
      el(
        "tr",
        {},
        el("td", { text: fmtTime(a.raised_ts) }),
        el("td", { text: `${a.gate ? `${a.site} / ${a.gate}: ` : ""}${phoneWords(a)}${heardOn(a)}` }),
        el("td", { class: a.state === "open" ? "state-open" : "", text: stateText }),
        el("td", { class: a.acknowledged ? "" : "state-open", text: a.acknowledged ? `${a.acked_by} ${fmtTime(a.acked_ts)}` : "not yet" }),
      ),
    );
  }
}

// -- the alarm -----------------------------------------------------------------------------
function renderAlarm(latched, reasons) {
  const overlay = $("alarm");
  if (!latched.length) {
    if (!overlay.hidden) {
      overlay.hidden = true;
      state.shownAlarmId = null;
      applyInert();
      if ($("login").hidden) $("banner").focus();
    }
    return;
  }
  // The oldest latched alarm first: acknowledge in the order they happened.
  const alert = latched.find((a) => a.id === state.shownAlarmId) || latched[0];
  const wasHidden = overlay.hidden;
  if (state.shownAlarmId !== alert.id) {
    $("alarm-note").value = "";
    $("alarm-error").textContent = "";
  }
  state.shownAlarmId = alert.id;
  overlay.dataset.id = alert.id;
  // A gate's device is allowlisted at that gate, not here.
  $("alarm-allow").hidden = Boolean(alert.gate);
  overlay.dataset.left = String(alert.state === "resolved");
  const left = alert.state === "resolved";
  setText($("alarm-title"), alertHeadline(alert));
  setText($("alarm-meta"), alertWhen(alert));
  $("alarm-left").hidden = !left;
  // Latched: the phone is gone, the alarm is not, until a guard has seen it.
  if (left) setText($("alarm-left"), `LEFT at ${fmtTime(alert.resolved_ts)} – still to acknowledge`);
  $("alarm-degraded").hidden = !reasons.length;
  setText($("alarm-degraded"), reasons.length ? `Scanner DEGRADED: ${reasons.join(" · ")}` : "");
  const details = $("alarm-reasons");
  const jargon = alertJargon(alert);
  if (details.dataset.for !== `${alert.id}:${alert.updated_ts}`) {
    clear(details);
    for (const line of jargon) details.append(el("li", { text: line }));
    details.dataset.for = `${alert.id}:${alert.updated_ts}`;
  }
  const silenced = silenceActive(latched);
  $("alarm-silence").hidden = silenced;
  $("alarm-silenced").hidden = !silenced;
  if (silenced) setText($("alarm-silenced"), `Sound silenced by ${state.silence.by} until ${fmtTime(state.silence.until / 1000)}. A new alarm sounds at once.`);
  renderOthers(latched.filter((a) => a.id !== alert.id));
  overlay.hidden = false;
  if (wasHidden) {
    applyInert();
    if ($("login").hidden || !$("login").classList.contains("over")) $("alarm-ack").focus();
  }
}

function renderOthers(others) {
  const box = $("alarm-others");
  box.hidden = others.length === 0;
  const list = $("alarm-others-list");
  const key = others.map((a) => `${a.id}:${a.updated_ts}:${a.state}`).join("|") + `@${Math.floor(Date.now() / 5000)}`;
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  clear(list);
  for (const a of others) {
    list.append(
      el(
        "li",
        { class: "other-alarm", dataset: { id: a.id, left: String(a.state === "resolved") } },
        el("div", { class: "other-text" }, el("strong", { text: alertHeadline(a) }), el("span", { text: alertWhen(a) })),
        el("button", { type: "button", class: "other-ack", text: "Acknowledge", "aria-label": `Acknowledge: ${alertHeadline(a)}`, onclick: () => acknowledge(a.id) }),
      ),
    );
  }
}

function showAlarmFor(id) {
  state.shownAlarmId = id;
  render();
  $("alarm-ack").focus();
}

async function acknowledge(which) {
  const id = typeof which === "string" ? which : state.shownAlarmId;
  if (!id) return;
  const main = id === state.shownAlarmId;
  const button = $("alarm-ack");
  button.disabled = true;
  try {
    const note = { note: main ? $("alarm-note").value : "" };
    const target = state.alerts.get(id);
    if (target && target.gate) {
      // Sent to the gate it belongs to; the gate records it and confirms.
      const path = [target.site, target.gate, "alerts", target.alert_id].map(encodeURIComponent).join("/");
      const sent = await api("POST", `${API}/gates/${path}/ack`, note);
      state.alerts.set(sent.alert.id, gateAlertView(sent.alert));
    } else {
      mergeAlert(await api("POST", `${API}/alerts/${encodeURIComponent(id)}/ack`, note));
    }
    if (main) state.shownAlarmId = null;
    render();
    if (!$("alarm").hidden) $("alarm-ack").focus();
  } catch (err) {
    $("alarm-error").textContent = `Not acknowledged: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function silence() {
  const latched = latchedAlarms();
  try {
    const out = await api("POST", `${API}/alarm/silence`, { minutes: SILENCE_MIN, alert_ids: latched.map((a) => a.id) });
    state.silence = { until: out.until_ts * 1000, ids: new Set(latched.map((a) => a.id)), by: out.by };
    $("alarm-error").textContent = "";
  } catch (err) {
    $("alarm-error").textContent = `Not silenced: ${err.message}`;
  }
  render();
  $("alarm-ack").focus();
}

// -- wall tablets (supervisor) -----------------------------------------------------------------
async function refreshKiosks() {
  state.kiosks = await api("GET", `${API}/kiosk`);
}

function renderKiosks() {
  const body = $("kiosk-list");
  clear(body);
  for (const k of state.kiosks) {
    body.append(
      el(
        "tr",
        {},
        el("td", { text: k.label }),
        el("td", { text: new Date(k.created_ts * 1000).toLocaleString([], { hourCycle: "h23" }) }),
        el("td", { text: k.created_by }),
        el("td", {}, el("button", { type: "button", class: "small", text: "Revoke", "aria-label": `Revoke ${k.label}`, onclick: () => revokeKiosk(k) })),
      ),
    );
  }
  if (!state.kiosks.length) body.append(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No wall tablet yet." })));
}

async function makeKiosk(event) {
  event.preventDefault();
  try {
    await api("POST", `${API}/kiosk`, { label: $("kiosk-label").value.trim(), this_device: true });
    // This tablet is now the wall screen: the supervisor's session ended with that.
    state.me = null;
    await resume(false);
  } catch (err) {
    $("kiosk-msg").textContent = `Not made a wall screen: ${err.message}`;
  }
}

async function revokeKiosk(k) {
  try {
    await api("DELETE", `${API}/kiosk/${k.id}`);
    $("kiosk-msg").textContent = `Revoked “${k.label}”: that tablet is signed out.`;
    await refreshKiosks();
    renderKiosks();
  } catch (err) {
    $("kiosk-msg").textContent = `Not revoked: ${err.message}`;
  }
}

// -- allowlist (supervisor): allowlist.js, loaded after this file, holds its functions ------
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
  for (const view of document.querySelectorAll("#main > .view")) view.hidden = view.id !== `view-${name}`;
  // review.js fills its own views when they are shown.
  document.dispatchEvent(new CustomEvent("checkpoint:view", { detail: name }));
  clearInterval(state.cal.timer);
  state.cal.timer = null;
  if (name === "allowlist") refreshAllowlist().then(renderAllowlist).catch(() => {});
  if (name === "tablets") refreshKiosks().then(renderKiosks).catch(() => {});
  if (name === "calibration") {
    fillZoneForm();
    loadCalDevices().catch(() => {});
    state.cal.timer = setInterval(() => loadCalDevices().catch(() => {}), 1000);
  }
}

// -- start -------------------------------------------------------------------------------------
function trapFocus(container) {
  container.addEventListener("keydown", (e) => {
    if (e.key !== "Tab") return;
    const focusable = [...container.querySelectorAll("button, input, summary, select")].filter((n) => n.offsetParent !== null && !n.disabled);
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
}

function enableSound() {
  unlockAudio();
  render();
}

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
  $("logout").addEventListener("click", askSignOut);
  $("confirm-yes").addEventListener("click", onLogout);
  $("confirm-no").addEventListener("click", closeConfirm);
  $("confirm").addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeConfirm();
  });
  $("alarm-ack").addEventListener("click", () => acknowledge(null));
  $("alarm-note").addEventListener("keydown", (e) => {
    if (e.key === "Enter") acknowledge(null);
  });
  $("alarm-silence").addEventListener("click", silence);
  $("alarm-sound").addEventListener("click", enableSound);
  $("alarm-allow").addEventListener("click", () => {
    if (state.shownAlarmId) allowlistAlert(state.shownAlarmId, null);
  });
  for (const layer of ["alarm", "confirm", "login"]) trapFocus($(layer));
  $("sound-enable").addEventListener("click", enableSound);
  $("siren-test").addEventListener("click", testSiren);
  let saved = 100;
  try {
    saved = Number(localStorage.getItem("checkpoint-volume") || "100");
  } catch (_err) {
    saved = 100;
  }
  $("volume").value = String(saved);
  setVolume(saved);
  $("volume").addEventListener("input", () => setVolume(Number($("volume").value)));
  // Any tap also unlocks audio, for a tablet that reloaded with its session still valid.
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("keydown", unlockAudio, { passive: true });
  for (const button of $("nav").querySelectorAll("button")) button.addEventListener("click", () => showView(button.dataset.view));
  $("allow-form").addEventListener("submit", addAllowed);
  $("kiosk-form").addEventListener("submit", makeKiosk);
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
  setInterval(pollHealth, HEALTH_POLL_MS);
  setInterval(watchdog, 1000);
  setInterval(render, 1000); // elapsed times and silences move even without events
}

// Who is this tablet? A session, a kiosk, nobody, or the scanner cannot be reached at all
// (then say so, full screen, instead of offering a sign-in that cannot work).
async function resume(keepMessage) {
  try {
    state.me = await api("GET", `${API}/session`);
    state.offlineBoot = false;
    renderNoConnection();
    await startMonitor();
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      state.offlineBoot = false;
      renderNoConnection();
      if (!keepMessage) showLogin("", false);
      return;
    }
    state.offlineBoot = true;
    renderNoConnection();
    setTimeout(() => {
      if (!state.me) resume(keepMessage);
    }, RECONNECT_MS);
  }
}

async function boot() {
  wire();
  reportSound();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
  await resume(false);
}

document.addEventListener("DOMContentLoaded", boot);
