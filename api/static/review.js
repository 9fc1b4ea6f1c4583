// The supervisor's review pages: any day's alerts, one alert in full (why, which devices, its
// history and acknowledgements), the devices and each one's timeline, the audit log, and the
// after-action export with its download. Loaded after app.js and uses its helpers ($, el, api,
// fmtTime, phoneWords, heardOn); the API refuses all of it to a guard's session anyway.
"use strict";

const DAY_S = 86400;
// The timeline's lanes, top to bottom; "alerts" carries the alerts' spans.
const LANES = ["alerts", "wifi", "ble", "sdr"];
const LANE_NAMES = { alerts: "Alerts", wifi: "Wi-Fi", ble: "Bluetooth", sdr: "Cellular" };
// Levels drawn from faint to solid: a phone at the fence (-90 dBm) to one at the desk (-40).
const RSSI_FAINT = -95;
const RSSI_STRONG = -40;
// What the audit log's actions mean, in words; anything else is shown as recorded.
const ACTION_WORDS = {
  "alert.ack": "acknowledged an alert",
  "allowlist.replace": "changed the allowlist",
  export: "exported a bundle",
  login: "signed in",
  "login.failed": "failed to sign in",
  logout: "signed out",
  "alarm.test": "tested the siren",
  "kiosk.issue": "made a wall tablet",
  "kiosk.revoke": "revoked a wall tablet",
  "token.create": "created an API token",
  "token.revoke": "revoked an API token",
  "user.add": "added a user",
  "user.remove": "removed a user",
  "user.update": "changed a user",
  "zone.update": "changed the zone",
  "zone.calibrate": "calibrated the zone",
};
// An alert's "raised" record repeats what the page shows above it; only the rest is listed.
const SHOWN_ABOVE = new Set(["reasons", "title", "device_ids", "sensors", "note"]);
const EVENT_WORDS = { raised: "Alarm raised", updated: "Updated", acknowledged: "Acknowledged", resolved: "Left the zone" };

const review = {
  stack: [], // the views "Back" returns to
  historyDay: null, // unix seconds of the local midnight shown
  auditDay: null,
  auditNext: null,
  devicesNext: null,
  device: null, // { id, day }
  exportAbort: null,
  exportUrl: null,
};

// -- dates (the tablet's local days, as the monitor's "Today") ---------------------------------
function localMidnight(ts) {
  const d = new Date(ts * 1000);
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
}

function addDays(midnight, days) {
  // Through the calendar, not 86400 s: a day with a clock change is 23 or 25 hours long.
  const d = new Date(midnight * 1000);
  d.setDate(d.getDate() + days);
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
}

function dateValue(midnight) {
  const d = new Date(midnight * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function fromDateValue(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime() / 1000;
}

function localInputValue(ts) {
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${dateValue(localMidnight(ts))}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(text) {
  const t = new Date(text).getTime();
  return Number.isFinite(t) ? t / 1000 : null;
}

function fmtDay(midnight) {
  return new Date(midnight * 1000).toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function fmtWhen(ts) {
  if (ts === null || ts === undefined) return "–";
  const day = localMidnight(ts) === localMidnight(Date.now() / 1000) ? "" : `${dateValue(localMidnight(ts))} `;
  return `${day}${fmtTime(ts)}`;
}

// A row of day navigation: previous, a date field, next, today.
function dayNav(container, onPick) {
  clear(container);
  const input = el("input", { type: "date", "aria-label": "Day" });
  const prev = el("button", { type: "button", class: "small", text: "\u2039 Previous day" });
  const next = el("button", { type: "button", class: "small", text: "Next day \u203a" });
  const today = el("button", { type: "button", class: "small", text: "Today" });
  const label = el("span", { class: "day-label" });
  let current = localMidnight(Date.now() / 1000);
  const show = (midnight) => {
    current = midnight;
    input.value = dateValue(midnight);
    input.max = dateValue(localMidnight(Date.now() / 1000));
    label.textContent = fmtDay(midnight);
    next.disabled = midnight >= localMidnight(Date.now() / 1000);
    onPick(midnight);
  };
  prev.addEventListener("click", () => show(addDays(current, -1)));
  next.addEventListener("click", () => show(addDays(current, 1)));
  today.addEventListener("click", () => show(localMidnight(Date.now() / 1000)));
  input.addEventListener("change", () => {
    const picked = fromDateValue(input.value);
    if (picked !== null) show(picked);
  });
  container.append(prev, input, next, today, label);
  return show;
}

function failed(node, what, err) {
  setText(node, `${what}: ${err instanceof HttpError ? err.message : "the scanner cannot be reached"}`);
}

function openView(name, from) {
  if (from && from !== name) review.stack.push(from);
  showView(name);
}

function goBack() {
  showView(review.stack.pop() || "history");
}

// -- history beyond today --------------------------------------------------------------------
let showHistoryDay = null;

async function loadHistory(midnight) {
  review.historyDay = midnight;
  const body = $("hist-list");
  const msg = $("hist-msg");
  setText(msg, "Loading…");
  try {
    const end = addDays(midnight, 1);
    const items = [];
    let offset = 0;
    // A day of a busy gate is a few hundred alerts: page through all of them.
    for (;;) {
      const page = await api("GET", `${API}/alerts?since=${midnight}&until=${end}&limit=500&offset=${offset}`);
      items.push(...page.items);
      if (page.next_offset === null || items.length >= 5000) break;
      offset = page.next_offset;
    }
    if (review.historyDay !== midnight) return; // another day was picked meanwhile
    clear(body);
    for (const a of items) body.append(alertRow(a, "history"));
    setText(msg, items.length ? `${items.length} alert${items.length === 1 ? "" : "s"} on ${fmtDay(midnight)}.` : `No alerts on ${fmtDay(midnight)}.`);
  } catch (err) {
    clear(body);
    failed(msg, "History not loaded", err);
  }
}

function alertRow(a, from) {
  const left = a.state === "open" ? "still inside" : fmtTime(a.resolved_ts);
  return el(
    "tr",
    { dataset: { alert: a.id } },
    el("td", { text: fmtWhen(a.raised_ts) }),
    el("td", { text: `${phoneWords(a)}${heardOn(a)}` }),
    el("td", { class: a.state === "open" ? "state-open" : "", text: left }),
    el("td", { class: a.acknowledged ? "" : "state-open", text: a.acknowledged ? `${a.acked_by} ${fmtTime(a.acked_ts)}` : "not yet" }),
    el("td", {}, el("button", { type: "button", class: "small", text: "Details", onclick: () => showAlertDetail(a.id, from) })),
  );
}

// -- one alert in full -----------------------------------------------------------------------
async function showAlertDetail(id, from) {
  openView("alert", from);
  const msg = $("alert-msg");
  setText($("alert-title"), "Alert");
  for (const id2 of ["alert-facts", "alert-reasons", "alert-devices", "alert-history"]) clear($(id2));
  setText(msg, "Loading…");
  let detail;
  try {
    detail = await api("GET", `${API}/alerts/${encodeURIComponent(id)}`);
  } catch (err) {
    failed(msg, "Alert not loaded", err);
    return;
  }
  const a = detail.alert;
  setText($("alert-title"), `${phoneWords(a)}${heardOn(a)}`);
  const facts = [
    ["Alert", a.id],
    ["Raised", fmtWhen(a.raised_ts)],
    ["Left", a.state === "open" ? "still inside" : fmtWhen(a.resolved_ts)],
    ["Inside for", fmtSpan(a.duration_s || ((a.resolved_ts || Date.now() / 1000) - a.raised_ts))],
    ["Acknowledged", a.acknowledged ? `${a.acked_by} at ${fmtWhen(a.acked_ts)}${a.ack_note ? ` – “${a.ack_note}”` : ""}` : "not yet"],
    ["Kind", a.kind],
    ["Confidence", `${Math.round(a.confidence * 100)}%`],
    ["Radios", a.sensors.map((r) => RADIO_NAMES[r] || r).join(", ")],
  ];
  const dl = $("alert-facts");
  for (const [k, v] of facts) dl.append(el("dt", { text: k }), el("dd", { text: v }));
  for (const r of a.reasons) $("alert-reasons").append(el("li", { text: r }));
  const history = $("alert-history");
  for (const h of detail.history) {
    const note = h.detail && typeof h.detail.note === "string" ? h.detail.note : "";
    const rest = Object.entries(h.detail || {})
      .filter(([k]) => !SHOWN_ABOVE.has(k))
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
      .join("; ");
    history.append(
      el(
        "tr",
        { class: h.event === "acknowledged" ? "ack-row" : "" },
        el("td", { class: "nowrap", text: fmtWhen(h.ts) }),
        el("td", { class: "nowrap", text: EVENT_WORDS[h.event] || h.event }),
        el("td", { class: "nowrap", text: h.actor }),
        el("td", { class: "detail" }, note ? el("strong", { text: `“${note}” ` }) : null, rest),
      ),
    );
  }
  setText(msg, "");
  const devices = $("alert-devices");
  for (const deviceId of a.device_ids) {
    const row = el("tr", {}, el("td", { class: "mono", text: deviceId }), el("td", { text: "…" }), el("td"), el("td"), el("td", {}, el("button", { type: "button", class: "small", text: "Timeline", onclick: () => showDevice(deviceId, localMidnight(a.raised_ts), "alert") })));
    devices.append(row);
    api("GET", `${API}/devices/${encodeURIComponent(deviceId)}?since=${a.raised_ts - 60}&until=${Math.min(Date.now() / 1000, (a.resolved_ts || Date.now() / 1000) + 60)}`)
      .then((d) => {
        row.children[1].textContent = `${d.device.kind}${d.device.vendor ? ` (${d.device.vendor})` : ""}`;
        row.children[2].textContent = d.device.radios.map((r) => RADIO_NAMES[r] || r).join(", ");
        row.children[3].textContent = fmtWhen(d.device.last_seen);
      })
      .catch(() => {
        row.children[1].textContent = "no longer in the store";
      });
  }
  if (!a.device_ids.length) devices.append(el("tr", {}, el("td", { colspan: "5", text: "No device recorded." })));
}

// -- devices and their timelines -------------------------------------------------------------
async function loadDevices(append) {
  const msg = $("dev-msg");
  const body = $("dev-list");
  const span = $("dev-since").value;
  const params = new URLSearchParams({ limit: "100", offset: String(append ? review.devicesNext || 0 : 0) });
  if (span) params.set("since", String(Math.floor(Date.now() / 1000 - Number(span))));
  if ($("dev-inzone").checked) params.set("in_zone", "true");
  setText(msg, "Loading…");
  try {
    const page = await api("GET", `${API}/devices?${params}`);
    if (!append) clear(body);
    for (const d of page.items) {
      body.append(
        el(
          "tr",
          { dataset: { device: d.id } },
          el("td", { text: fmtWhen(d.last_seen) }),
          el("td", {}, el("span", { class: "mono", text: d.id }), el("br"), `${d.kind}${d.vendor ? ` · ${d.vendor}` : ""}${d.allowlisted ? " · allowlisted" : ""}`),
          el("td", { text: d.radios.map((r) => RADIO_NAMES[r] || r).join(", ") }),
          el("td", { text: d.last_rssi === null ? "–" : `${Math.round(d.last_rssi)}` }),
          el("td", { class: d.in_zone ? "state-open" : "", text: d.in_zone ? "inside" : "outside" }),
          el("td", {}, el("button", { type: "button", class: "small", text: "Timeline", onclick: () => showDevice(d.id, localMidnight(d.last_seen), "devices") })),
        ),
      );
    }
    review.devicesNext = page.next_offset;
    $("dev-more").hidden = page.next_offset === null;
    const shown = body.children.length;
    setText(msg, shown ? `${shown} device${shown === 1 ? "" : "s"}${page.next_offset === null ? "" : " (more below)"}.` : "No device seen in that time.");
  } catch (err) {
    failed(msg, "Devices not loaded", err);
  }
}

let showDeviceDay = null;

function showDevice(id, midnight, from) {
  review.device = { id, day: midnight };
  openView("device", from);
  setText($("device-title"), id);
  showDeviceDay = dayNav($("device-nav"), (day) => loadDevice(id, day));
  showDeviceDay(midnight);
}

async function loadDevice(id, midnight) {
  review.device = { id, day: midnight };
  const msg = $("device-msg");
  setText(msg, "Loading…");
  const end = Math.min(addDays(midnight, 1), Date.now() / 1000);
  let d;
  try {
    d = await api("GET", `${API}/devices/${encodeURIComponent(id)}?since=${midnight}&until=${Math.max(end, midnight + 1)}`);
  } catch (err) {
    failed(msg, "Device not loaded", err);
    return;
  }
  if (!review.device || review.device.id !== id || review.device.day !== midnight) return;
  const dev = d.device;
  const facts = $("device-facts");
  clear(facts);
  const ids = dev.identifiers;
  const pairs = [
    ["Kind", `${dev.kind}${dev.vendor ? ` (${dev.vendor})` : ""}`],
    ["First seen", fmtWhen(dev.first_seen)],
    ["Last seen", fmtWhen(dev.last_seen)],
    ["Now", dev.in_zone ? "inside the zone" : "outside the zone"],
    ["Radios", dev.radios.map((r) => RADIO_NAMES[r] || r).join(", ") || "–"],
    ["Addresses", [...ids.macs, ...ids.ble].join(", ") || "–"],
    ["Allowlisted", dev.allowlisted ? "yes" : "no"],
  ];
  for (const [k, v] of pairs) facts.append(el("dt", { text: k }), el("dd", { text: v }));
  const span = activeSpan(d, midnight, addDays(midnight, 1));
  drawTimeline($("device-timeline"), d, span[0], span[1]);
  const alerts = $("device-alerts");
  clear(alerts);
  for (const a of d.alerts) {
    alerts.append(
      el(
        "tr",
        {},
        el("td", { text: fmtWhen(a.raised_ts) }),
        el("td", { text: `${phoneWords(a)}${heardOn(a)}` }),
        el("td", { text: a.acknowledged ? `${a.acked_by} ${fmtTime(a.acked_ts)}` : "not yet" }),
        el("td", {}, el("button", { type: "button", class: "small", text: "Details", onclick: () => showAlertDetail(a.id, "device") })),
      ),
    );
  }
  if (!d.alerts.length) alerts.append(el("tr", {}, el("td", { colspan: "4", text: "None." })));
  const heard = d.sightings.length;
  const shown = `shown ${fmtTime(span[0]).slice(0, 5)} to ${fmtTime(span[1]).slice(0, 5)}`;
  setText(msg, heard ? `${heard} sighting${heard === 1 ? "" : "s"} on ${fmtDay(midnight)}${d.truncated ? " (the first ones only)" : ""}; ${shown}.` : `Not heard on ${fmtDay(midnight)}.`);
}

// The part of the day the device was heard (or alarmed), with a margin: a phone that stayed
// fifteen minutes would be a sliver on a whole day's axis.
function activeSpan(detail, dayStart, dayEnd) {
  const times = [];
  for (const s of detail.sightings) times.push(s.first_ts, s.last_ts);
  for (const a of detail.alerts) {
    if (a.raised_ts < dayEnd && (a.resolved_ts || dayEnd) > dayStart) times.push(a.raised_ts, a.resolved_ts || Date.now() / 1000);
  }
  if (!times.length) return [dayStart, dayEnd];
  let lo = Math.max(dayStart, Math.min(...times));
  let hi = Math.min(dayEnd, Math.max(...times));
  const pad = Math.max(300, (hi - lo) * 0.1);
  lo = Math.max(dayStart, lo - pad);
  hi = Math.min(dayEnd, hi + pad);
  if (hi - lo < 1800) hi = Math.min(dayEnd, lo + 1800);
  return [lo, hi];
}

// Tick steps (seconds): the first that gives at most eight ticks across the span.
const TICK_STEPS = [300, 600, 900, 1800, 3600, 7200, 10800, 21600];

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// One lane per radio (and one for the alerts), the day across: each sighting a bar from its
// first to its last frame, darker the stronger it was heard.
function drawTimeline(container, detail, since, until) {
  clear(container);
  const width = 1000;
  const left = 100;
  const right = 28;
  const laneH = 34;
  const top = 8;
  const height = top + LANES.length * laneH + 30;
  const x = (ts) => left + ((Math.min(Math.max(ts, since), until) - since) / (until - since)) * (width - left - right);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline-svg" });
  LANES.forEach((lane, i) => {
    const y = top + i * laneH;
    root.append(svg("rect", { x: left, y, width: width - left - right, height: laneH - 6, class: "lane" }));
    root.append(svg("text", { x: left - 8, y: y + laneH / 2 + 1, "text-anchor": "end", class: "lane-name" }, LANE_NAMES[lane]));
  });
  const step = TICK_STEPS.find((s) => (until - since) / s <= 8) || TICK_STEPS[TICK_STEPS.length - 1];
  // Ticks on the local clock's round times (the tablet's zone offset is whole minutes).
  const offset = -new Date(since * 1000).getTimezoneOffset() * 60;
  for (let t = Math.ceil((since + offset) / step) * step - offset; t <= until; t += step) {
    const tx = x(t);
    root.append(svg("line", { x1: tx, x2: tx, y1: top, y2: top + LANES.length * laneH - 6, class: "tick" }));
    root.append(svg("text", { x: tx, y: height - 10, "text-anchor": "middle", class: "tick-label" }, fmtTime(t).slice(0, 5)));
  }
  for (const a of detail.alerts) {
    const end = a.resolved_ts || Date.now() / 1000;
    if (end < since || a.raised_ts > until) continue;
    const x1 = x(a.raised_ts);
    const bar = svg("rect", { x: x1, y: top + 2, width: Math.max(3, x(end) - x1), height: laneH - 10, class: "bar-alert" });
    bar.append(svg("title", {}, `Alert ${fmtTime(a.raised_ts)}–${a.resolved_ts ? fmtTime(a.resolved_ts) : "now"}`));
    root.append(bar);
  }
  for (const s of detail.sightings) {
    const lane = LANES.indexOf(s.radio);
    if (lane < 0) continue;
    const level = s.rssi_max === null ? 0.5 : Math.min(1, Math.max(0.15, (s.rssi_max - RSSI_FAINT) / (RSSI_STRONG - RSSI_FAINT)));
    const x1 = x(s.first_ts);
    const bar = svg("rect", { x: x1, y: top + lane * laneH + 2, width: Math.max(2, x(s.last_ts) - x1), height: laneH - 10, class: `bar-${s.radio}`, "fill-opacity": level.toFixed(2) });
    const rssi = s.rssi_max === null ? "" : `, strongest ${Math.round(s.rssi_max)}`;
    bar.append(svg("title", {}, `${LANE_NAMES[s.radio]} ${fmtTime(s.first_ts)}–${fmtTime(s.last_ts)}: ${s.count} heard by ${s.sensor}${rssi}`));
    root.append(bar);
  }
  container.append(root);
}

// -- the audit log ---------------------------------------------------------------------------
let showAuditDay = null;

function auditDetail(detail) {
  if (!detail || typeof detail !== "object") return "";
  return Object.entries(detail)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("; ");
}

async function loadAudit(midnight, append) {
  review.auditDay = midnight;
  const msg = $("audit-msg");
  const body = $("audit-list");
  const params = new URLSearchParams({ since: String(midnight), until: String(addDays(midnight, 1)), limit: "100", offset: String(append ? review.auditNext || 0 : 0) });
  const actor = $("audit-actor").value.trim();
  if (actor) params.set("actor", actor);
  setText(msg, "Loading…");
  try {
    const page = await api("GET", `${API}/audit?${params}`);
    if (review.auditDay !== midnight) return;
    if (!append) clear(body);
    for (const r of page.items) {
      body.append(
        el(
          "tr",
          {},
          el("td", { class: "nowrap", text: fmtWhen(r.ts) }),
          el("td", { text: r.actor }),
          el("td", { title: r.action, dataset: { action: r.action } }, ACTION_WORDS[r.action] || r.action),
          el("td", { class: "detail", text: auditDetail(r.detail) }),
        ),
      );
    }
    review.auditNext = page.next_offset;
    $("audit-more").hidden = page.next_offset === null;
    const shown = body.children.length;
    setText(msg, shown ? `${shown} record${shown === 1 ? "" : "s"} on ${fmtDay(midnight)}${actor ? ` by ${actor}` : ""}.` : `Nothing recorded on ${fmtDay(midnight)}${actor ? ` by ${actor}` : ""}.`);
  } catch (err) {
    failed(msg, "Audit log not loaded", err);
  }
}

// -- the export ------------------------------------------------------------------------------
function setPeriod(since, until) {
  $("export-since").value = localInputValue(since);
  $("export-until").value = localInputValue(until);
}

function quickPeriod(which) {
  const now = Date.now() / 1000;
  const today = localMidnight(now);
  if (which === "8h") setPeriod(now - 8 * 3600, now);
  else if (which === "today") setPeriod(today, now);
  else if (which === "yesterday") setPeriod(addDays(today, -1), today);
  else if (which === "7d") setPeriod(addDays(today, -7), now);
}

function fmtBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function exportBusy(busy) {
  $("export-busy").hidden = !busy;
  $("export-go").disabled = busy;
}

async function runExport(event) {
  event.preventDefault();
  const msg = $("export-msg");
  $("export-done").hidden = true;
  $("export-warn").hidden = true;
  const since = fromLocalInput($("export-since").value);
  const until = fromLocalInput($("export-until").value);
  const now = Date.now() / 1000;
  if (since === null || until === null) {
    setText(msg, "Pick the start and the end of the period.");
    return;
  }
  // An end within two minutes of this tablet's clock means "now" on the scanner's clock: the
  // two clocks may differ by that much, and the scanner refuses an end in its future.
  const nearNow = Math.abs(until - now) < 120;
  if ((nearNow ? now : until) <= since) {
    setText(msg, "The period must start before it ends.");
    return;
  }
  const params = new URLSearchParams({ since: String(since), until: nearNow ? "now" : String(until) });
  if ($("export-pseudo").checked) params.set("pseudonymise", "true");
  const abort = new AbortController();
  review.exportAbort = abort;
  exportBusy(true);
  const progress = $("export-progress");
  progress.removeAttribute("value");
  setText(msg, "The scanner is building the bundle…");
  try {
    const response = await fetch(`${API}/export?${params}`, { credentials: "same-origin", signal: abort.signal });
    if (!response.ok) {
      let problem = null;
      try {
        problem = await response.json();
      } catch (_err) {
        problem = null;
      }
      if (response.status === 401) sessionEnded("Your session ended; sign in again.");
      throw new HttpError(response.status, problem);
    }
    const total = Number(response.headers.get("Content-Length")) || 0;
    const unreadable = Number(response.headers.get("X-Checkpoint-Unreadable")) || 0;
    const name = (/filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "") || [])[1] || "checkpoint-export.tar.gz";
    const chunks = [];
    let received = 0;
    const reader = response.body.getReader();
    if (total) progress.max = total;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      if (total) progress.value = received;
      setText(msg, `Downloading: ${fmtBytes(received)}${total ? ` of ${fmtBytes(total)}` : ""}`);
    }
    if (review.exportUrl) URL.revokeObjectURL(review.exportUrl);
    review.exportUrl = URL.createObjectURL(new Blob(chunks, { type: "application/gzip" }));
    const link = $("export-link");
    link.href = review.exportUrl;
    link.download = name;
    link.textContent = `Download ${name} (${fmtBytes(received)})`;
    $("export-done").hidden = false;
    setText(msg, `Ready. Check it on any computer with: checkpoint verify ${name}`);
    if (unreadable) {
      $("export-warn").hidden = false;
      setText($("export-warn"), `The store is damaged: ${unreadable} part${unreadable === 1 ? "" : "s"} of the period could not be read. The bundle holds everything else and lists what is missing (unreadable.ndjson and the report's first section).`);
    }
    link.click();
  } catch (err) {
    if (err && err.name === "AbortError") setText(msg, "Export cancelled.");
    else failed(msg, "Export failed", err);
  } finally {
    review.exportAbort = null;
    exportBusy(false);
  }
}

// -- wiring ----------------------------------------------------------------------------------
document.addEventListener("checkpoint:view", (e) => {
  const name = e.detail;
  if (name === "history") {
    if (!showHistoryDay) showHistoryDay = dayNav($("hist-nav"), loadHistory);
    showHistoryDay(review.historyDay === null ? localMidnight(Date.now() / 1000) : review.historyDay);
  } else if (name === "devices") {
    loadDevices(false);
  } else if (name === "audit") {
    if (!showAuditDay) showAuditDay = dayNav($("audit-nav"), (day) => loadAudit(day, false));
    showAuditDay(review.auditDay === null ? localMidnight(Date.now() / 1000) : review.auditDay);
  } else if (name === "export") {
    if (!$("export-since").value) quickPeriod("8h");
  }
});

document.addEventListener("DOMContentLoaded", () => {
  for (const back of document.querySelectorAll("[data-back]")) back.addEventListener("click", goBack);
  $("dev-since").addEventListener("change", () => loadDevices(false));
  $("dev-inzone").addEventListener("change", () => loadDevices(false));
  $("dev-more").addEventListener("click", () => loadDevices(true));
  $("audit-more").addEventListener("click", () => loadAudit(review.auditDay, true));
  let typing = null;
  $("audit-actor").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => loadAudit(review.auditDay, false), 400);
  });
  $("export-form").addEventListener("submit", runExport);
  $("export-cancel").addEventListener("click", () => review.exportAbort && review.exportAbort.abort());
  for (const b of $("export-quick").querySelectorAll("button")) b.addEventListener("click", () => quickPeriod(b.dataset.quick));
});
