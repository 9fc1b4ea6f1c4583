"""The store's tables, as numbered migrations applied by ``PRAGMA user_version``.

Append a migration to change the schema; never edit one that has shipped, since Pis in the field
have already applied it.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema. The comments on its columns are as shipped; alerts.resolution has
    # since gained 'identified' and 'sensor_lost' (``AlertRecord.resolution`` has the full set).
    """
    CREATE TABLE alerts (
        id            TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,          -- 'handset' | 'unidentified_transmitter'
        state         TEXT NOT NULL,          -- 'open' | 'resolved'
        title         TEXT NOT NULL,
        raised_ts     REAL NOT NULL,          -- wall clock, unix seconds
        updated_ts    REAL NOT NULL,
        resolved_ts   REAL,
        resolution    TEXT,                   -- 'left_zone' | 'cleared' | 'allowlisted'
        acked_ts      REAL,
        acked_by      TEXT,
        ack_note      TEXT,
        confidence    REAL NOT NULL,
        handsets      INTEGER NOT NULL,
        sensors       TEXT NOT NULL,          -- JSON list of radios
        reasons       TEXT NOT NULL,          -- JSON list of human-readable strings
        device_ids    TEXT NOT NULL,          -- JSON list
        duration_s    REAL NOT NULL DEFAULT 0 -- from the monotonic clock, immune to clock leaps
    );
    CREATE INDEX alerts_raised ON alerts(raised_ts);
    CREATE INDEX alerts_state ON alerts(state);

    -- Every transition of every alert. Hash-chained: hash = sha256(prev_hash || canonical row).
    CREATE TABLE alert_history (
        seq        INTEGER PRIMARY KEY,
        alert_id   TEXT NOT NULL,
        ts         REAL NOT NULL,
        event      TEXT NOT NULL,             -- 'raised' | 'updated' | 'acknowledged' | 'resolved'
        actor      TEXT NOT NULL,             -- 'core' or a user name
        detail     TEXT NOT NULL,             -- JSON
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    );
    CREATE INDEX alert_history_alert ON alert_history(alert_id);

    -- Who did what through the API or the command line. Hash-chained like alert_history.
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        ts         REAL NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        detail     TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    );

    -- The live feed for the tablet: the SSE event id is this table's id, so a tablet that
    -- reconnects with Last-Event-ID gets every event it missed.
    CREATE TABLE events (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        ts    REAL NOT NULL,
        type  TEXT NOT NULL,                  -- 'alert' | 'health' | 'allowlist' | 'zone'
        data  TEXT NOT NULL                   -- JSON
    );

    CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        vendor       TEXT,
        first_seen   REAL NOT NULL,
        last_seen    REAL NOT NULL,
        radios       TEXT NOT NULL,           -- JSON list
        identifiers  TEXT NOT NULL,           -- JSON: macs, fingerprints, BLE addresses
        evidence     TEXT NOT NULL,           -- JSON list of reasons behind the kind
        last_rssi    REAL,
        in_zone      INTEGER NOT NULL DEFAULT 0,
        ambient      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX devices_last_seen ON devices(last_seen);

    -- Observations aggregated per device, radio and minute.
    CREATE TABLE sightings (
        id          INTEGER PRIMARY KEY,
        device_id   TEXT NOT NULL,
        radio       TEXT NOT NULL,
        sensor      TEXT NOT NULL,
        first_ts    REAL NOT NULL,
        last_ts     REAL NOT NULL,
        count       INTEGER NOT NULL,
        rssi_min    REAL,
        rssi_max    REAL,
        rssi_mean   REAL,
        identifier  TEXT NOT NULL              -- the MAC / address / band seen
    );
    CREATE INDEX sightings_time ON sightings(first_ts);
    CREATE INDEX sightings_device ON sightings(device_id);

    -- Raw evidence behind alerts (frames, adverts, IQ snippets); shed first when disk runs low.
    CREATE TABLE evidence (
        id          INTEGER PRIMARY KEY,
        alert_id    TEXT,
        device_id   TEXT,
        radio       TEXT NOT NULL,
        ts          REAL NOT NULL,
        format      TEXT NOT NULL,             -- 'wifi_frame' | 'ble_advert' | 'sigmf'
        payload     BLOB NOT NULL
    );
    CREATE INDEX evidence_alert ON evidence(alert_id);
    CREATE INDEX evidence_time ON evidence(ts);

    CREATE TABLE sensor_health (
        sensor      TEXT PRIMARY KEY,
        radio       TEXT NOT NULL,
        state       TEXT NOT NULL,
        message     TEXT NOT NULL,
        updated_ts  REAL NOT NULL,
        last_obs_ts REAL,
        counters    TEXT NOT NULL,             -- JSON
        detail      TEXT NOT NULL              -- JSON
    );
    -- State changes only, for outage reporting in exports.
    CREATE TABLE health_log (
        id       INTEGER PRIMARY KEY,
        ts       REAL NOT NULL,
        sensor   TEXT NOT NULL,
        state    TEXT NOT NULL,
        message  TEXT NOT NULL
    );
    CREATE INDEX health_log_time ON health_log(ts);

    CREATE TABLE allowlist (
        id        INTEGER PRIMARY KEY,
        match     TEXT NOT NULL,               -- 'mac' | 'fingerprint' | 'ble_identity'
        value     TEXT NOT NULL,
        label     TEXT NOT NULL,
        added_by  TEXT NOT NULL,
        added_ts  REAL NOT NULL,
        UNIQUE (match, value)
    );

    -- Small key/value settings: zone calibration, ambient baseline state, site key.
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL                   -- JSON
    );

    CREATE TABLE users (
        username      TEXT PRIMARY KEY,
        role          TEXT NOT NULL,           -- 'guard' | 'supervisor' | 'admin'
        password_hash TEXT,
        pin_hash      TEXT,
        failed        INTEGER NOT NULL DEFAULT 0,
        locked_until  REAL NOT NULL DEFAULT 0,
        created_ts    REAL NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        token_hash  TEXT PRIMARY KEY,
        username    TEXT NOT NULL,
        created_ts  REAL NOT NULL,
        expires_ts  REAL NOT NULL
    );
    CREATE TABLE api_tokens (
        token_hash  TEXT PRIMARY KEY,
        username    TEXT NOT NULL,
        label       TEXT NOT NULL,
        created_ts  REAL NOT NULL
    );
    """,
    # 2: API tokens expire, act with a role no higher than their owner's (their scope), may
    # mint tokens only when they say so, and remember the token that minted them (revoking a
    # token revokes what it minted). Tokens made before this get the longest lifetime.
    """
    ALTER TABLE api_tokens ADD COLUMN expires_ts REAL;
    ALTER TABLE api_tokens ADD COLUMN role TEXT;
    ALTER TABLE api_tokens ADD COLUMN can_mint INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE api_tokens ADD COLUMN parent_hash TEXT;
    UPDATE api_tokens SET expires_ts = created_ts + 365 * 86400 WHERE expires_ts IS NULL;
    CREATE INDEX api_tokens_parent ON api_tokens(parent_hash);
    """,
    # 3: allowlist entries name one device. A fingerprint is shared by every phone of one model
    # and OS version: entries by fingerprint are kept, flagged and inactive, for the supervisor
    # to replace with the device's own identities. Entries may expire; an identity entry may
    # carry the fingerprint its phone probes with (for accounting, never matching).
    """
    ALTER TABLE allowlist ADD COLUMN expires_ts REAL;
    ALTER TABLE allowlist ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
    ALTER TABLE allowlist ADD COLUMN flag TEXT NOT NULL DEFAULT '';
    UPDATE allowlist SET flag = 'fingerprint-not-identity' WHERE match = 'fingerprint';
    """,
    # 4: a command post's view of the site's gates: each gate's last health as it published it,
    # and each gate's alerts as their transitions arrived (the gate's own store keeps the
    # audited record; these are what the command post was told, and what it sent back).
    """
    CREATE TABLE gates (
        site        TEXT NOT NULL,
        gate        TEXT NOT NULL,
        state       TEXT NOT NULL,
        health      TEXT NOT NULL DEFAULT '{}',
        health_ts   REAL,
        heard_ts    REAL NOT NULL,
        every_s     REAL,
        boot        TEXT NOT NULL DEFAULT '',
        seq         INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (site, gate)
    );
    CREATE TABLE gate_alerts (
        site          TEXT NOT NULL,
        gate          TEXT NOT NULL,
        alert_id      TEXT NOT NULL,
        state         TEXT NOT NULL,
        title         TEXT NOT NULL DEFAULT '',
        kind          TEXT NOT NULL DEFAULT '',
        confidence    REAL NOT NULL DEFAULT 0,
        handsets      INTEGER NOT NULL DEFAULT 0,
        sensors       TEXT NOT NULL DEFAULT '[]',
        reasons       TEXT NOT NULL DEFAULT '[]',
        raised_ts     REAL NOT NULL,
        updated_ts    REAL NOT NULL,
        duration_s    REAL NOT NULL DEFAULT 0,
        alarm         INTEGER NOT NULL DEFAULT 0,
        resolved_ts   REAL,
        resolution    TEXT,
        acked_ts      REAL,
        acked_by      TEXT,
        ack_note      TEXT,
        ack_sent_ts   REAL,
        ack_sent_by   TEXT,
        PRIMARY KEY (site, gate, alert_id)
    );
    CREATE INDEX gate_alerts_raised ON gate_alerts(raised_ts);
    """,
)
