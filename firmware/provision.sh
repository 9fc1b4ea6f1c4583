#!/usr/bin/env bash
# provision.sh: turn a fresh Raspberry Pi OS Lite (Bookworm) into a Checkpoint Scanner.
#
#   sudo firmware/provision.sh                 # on the Pi, from a checkout of the project
#   firmware/provision.sh --root /tmp/stage    # write every file under /tmp/stage, change nothing
#                                              # else (apt, pip, users, systemctl: logged only)
#   sudo firmware/provision.sh --broker --site hq --gate north --node inside --node gate
#                                              # the MQTT broker of a gate (on its core's Pi or the
#                                              # site's server): Mosquitto with TLS on 8883, a CA,
#                                              # a certificate per sensor node and for the core, ACLs
#
# Safe to run again: a file is rewritten only when its content or mode differs, the operator's
# config and the TLS certificate are created only when absent, packages only when missing. Written
# files carry no timestamps, so two runs leave the same tree. Steps: packages; files (units, udev,
# modprobe, D-Bus, NetworkManager, time, journal, watchdog); user; boot config; config and
# certificate; venv; then services.
set -euo pipefail
umask 022

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
PREFIX=/opt/checkpoint
ETC=/etc/checkpoint

APT_PACKAGES=(
  python3-venv    # the application's virtualenv
  python3-dev     # building wheels piwheels lacks, and the Wi-Fi element walker (C)
  gcc             # compiles that walker (the parser falls back to pure Python without)
  iw              # monitor interface and channel changes (nl80211)
  wireless-regdb  # regulatory database: which channels the adapter may tune
  bluez           # BLE scanning through org.bluez
  libpcap0.8      # scapy's BPF filter compilation
  libusb-1.0-0    # librtlsdr talks to the dongle through libusb
  rtl-sdr         # rtl_test / rtl_tcp for checking a dongle by hand
  openssl         # the API's TLS certificate
  fake-hwclock    # no RTC: resume the clock from the last saved time at boot
  systemd-timesyncd
  sqlite3         # inspecting the store by hand
)
UNITS=(
  checkpoint.target
  checkpoint-core.service
  checkpoint-api.service
  checkpoint-capture-wifi.service
  checkpoint-capture-ble.service
  checkpoint-capture-sdr.service
  checkpoint-wifi-monitor@.service
)

log() { printf 'provision: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

usage() {
  cat >&2 <<'USAGE'
usage: provision.sh [--root DIR]
       provision.sh --broker --site SITE --gate GATE --node NAME... [--core NAME]
                    [--broker-name HOST]... [--root DIR]
  --root DIR   write every file under DIR instead of /, and only log the commands that would
               change the running system (apt-get, pip, systemd-sysusers, systemctl, udevadm)
  --broker     set up the gate's MQTT broker only: Mosquitto listening with TLS on 8883, the
               site's CA, the broker's certificate (for this host name and every --broker-name),
               one client certificate per --node and for the core (named by --core, default
               "core"), and ACLs: a node publishes only under its own sensor/NAME/ topics, the
               core reads them and publishes under core/. Certificates are made once and kept.
USAGE
  exit 2
}

# Run a command that changes the running system, or say what would run in --root mode.
run() {
  if [[ -n $ROOT ]]; then
    log "would run: $*"
  else
    log "run: $*"
    "$@"
  fi
}

# install_file SRC DEST MODE: copy SRC to ROOT/DEST unless it is already there with that mode.
install_file() {
  local src=$1 dest=$ROOT$2 mode=$3
  mkdir -p "$(dirname "$dest")"
  if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
    return 0
  fi
  install -m "$mode" "$src" "$dest"
  log "wrote $2"
}

# install_new SRC DEST MODE: like install_file, but never replaces an existing file (operator's).
install_new() {
  if [[ -e $ROOT$2 ]]; then
    log "kept $2 (exists)"
    return 0
  fi
  install_file "$@"
}

# write_file DEST MODE < content
write_file() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  install_file "$tmp" "$1" "$2"
  rm -f "$tmp"
}

# run_ok: like run, for steps whose failure is harmless (say so in the log, carry on).
run_ok() {
  if ! run "$@"; then
    log "(failed, not needed: $*)"
  fi
}

# own OWNER DEST...: ownership needs the checkpoint user, which --root mode does not create.
own() {
  local owner=$1
  shift
  local path
  for path in "$@"; do
    run chown "$owner" "$ROOT$path"
  done
}

# Directory with a mode; mkdir -p alone would leave an existing directory's mode as it was.
make_dir() {
  mkdir -p "$ROOT$1"
  chmod "$2" "$ROOT$1"
}

install_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if [[ -n $ROOT ]] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "apt packages present"
  fi
}

install_system_files() {
  local unit
  for unit in "${UNITS[@]}"; do
    install_file "$SRC/systemd/$unit" "/etc/systemd/system/$unit" 0644
  done
  install_file "$SRC/systemd/checkpoint.sysusers" /etc/sysusers.d/checkpoint.conf 0644
  install_file "$SRC/systemd/checkpoint.tmpfiles" /etc/tmpfiles.d/checkpoint.conf 0644
  install_file "$SRC/firmware/60-checkpoint-rtlsdr.rules" /etc/udev/rules.d/60-checkpoint-rtlsdr.rules 0644
  install_file "$SRC/firmware/70-checkpoint-wifi-monitor.rules" \
    /etc/udev/rules.d/70-checkpoint-wifi-monitor.rules 0644
  install_file "$SRC/firmware/checkpoint-blacklist-dvb.conf" /etc/modprobe.d/checkpoint-blacklist-dvb.conf 0644
  install_file "$SRC/firmware/checkpoint-bluez.conf" /etc/dbus-1/system.d/checkpoint-bluez.conf 0644
  install_file "$SRC/firmware/bluetooth-checkpoint.conf" \
    /etc/systemd/system/bluetooth.service.d/checkpoint.conf 0644
  install_file "$SRC/firmware/NetworkManager-checkpoint.conf" \
    /etc/NetworkManager/conf.d/90-checkpoint.conf 0644
  install_file "$SRC/firmware/timesyncd-checkpoint.conf" /etc/systemd/timesyncd.conf.d/checkpoint.conf 0644
  install_file "$SRC/firmware/journald-checkpoint.conf" /etc/systemd/journald.conf.d/checkpoint.conf 0644
  install_file "$SRC/firmware/system-watchdog.conf" /etc/systemd/system.conf.d/checkpoint-watchdog.conf 0644
  install_file "$SRC/firmware/wifi-monitor" "$PREFIX/libexec/wifi-monitor" 0755
  install_new "$SRC/firmware/checkpoint-wifi-monitor.default" /etc/default/checkpoint-wifi-monitor 0644
  install_file "$SRC/hardware.md" "$PREFIX/share/hardware.md" 0644
}

# The boot config: our block between markers, replaced in place, the rest of the file untouched.
install_boot_config() {
  local config
  if [[ -f $ROOT/boot/firmware/config.txt ]] || [[ -n $ROOT && ! -e $ROOT/boot/config.txt ]]; then
    config=/boot/firmware/config.txt # Bookworm
  elif [[ -f $ROOT/boot/config.txt ]]; then
    config=/boot/config.txt # Bullseye and older
  else
    log "no /boot/firmware/config.txt: not a Raspberry Pi? boot settings skipped"
    return 0
  fi
  mkdir -p "$(dirname "$ROOT$config")"
  touch "$ROOT$config"
  {
    awk '/^# BEGIN checkpoint/ { skip = 1 } !skip { print } /^# END checkpoint/ { skip = 0 }' "$ROOT$config"
    cat "$SRC/firmware/config.txt.fragment"
  } | write_file "$config" 0755 # the FAT boot partition shows every file as 0755
}

install_config() {
  make_dir "$ETC" 0750
  make_dir "$ETC/tls" 0750
  install_new "$SRC/firmware/checkpoint.toml.example" "$ETC/checkpoint.toml" 0640
  install_file "$SRC/firmware/checkpoint.toml.example" "$PREFIX/share/checkpoint.toml.example" 0644
  own root:checkpoint "$ETC" "$ETC/tls" "$ETC/checkpoint.toml"
}

# A self-signed certificate for the tablet page, made once: replacing it would make every tablet
# that trusted it warn again. In --root mode it is made too (the key is random, by design).
install_certificate() {
  local cert=$ETC/tls/cert.pem key=$ETC/tls/key.pem name
  if [[ -e $ROOT$cert && -e $ROOT$key ]]; then
    log "kept $cert (exists)"
    return 0
  fi
  if [[ -n $ROOT ]]; then
    name=$(cat "$ROOT/etc/hostname" 2>/dev/null || echo checkpoint)
  else
    name=$(hostname)
  fi
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name,DNS:$name.local" \
    -keyout "$ROOT$key" -out "$ROOT$cert" 2>/dev/null
  chmod 0640 "$ROOT$key"
  chmod 0644 "$ROOT$cert"
  log "wrote $cert and $key for $name"
  own root:checkpoint "$key"
}

# The key that seals export bundles and keys the alert history, apart from the store: root:root
# 0600, handed to the core and API services by systemd (LoadCredential) so the service user can use it but not read or replace
# the file. Made once: a new key would stop earlier bundles' seals from checking. A store from
# before the key moved out has it in its settings: that key is moved into this file.
install_seal_key() {
  local keyfile=$ETC/seal.key
  if [[ -e $ROOT$keyfile ]]; then
    # From now on the core and the API key every alert-history link with it: links stamped
    # later that are plain SHA-256 were re-linked by someone without the key.
    if ! grep -q '^chain-keyed-since ' "$ROOT$keyfile"; then
      echo "chain-keyed-since $(date +%s)" >>"$ROOT$keyfile"
      log "$keyfile: the alert history is keyed from now"
    fi
    log "kept $keyfile (exists)"
    return 0
  fi
  # First the key of a store from before the key moved out, so its bundles keep verifying.
  if [[ -z $ROOT && -x $PREFIX/venv/bin/python ]]; then
    run "$PREFIX/venv/bin/python" - "$ETC/checkpoint.toml" "$keyfile" <<'PY'
import sys
from pathlib import Path

from scanner.config import load_config
from scanner.export.seal_key import LEGACY_SETTING, seal_keys
from scanner.store.db import Store

db = Path(load_config(sys.argv[1]).db_path)
if db.exists():
    store = Store(db)
    try:
        if store.get_setting(LEGACY_SETTING):
            seal_keys(store, sys.argv[2], create=False)
    finally:
        store.close()
PY
  fi
  if [[ ! -e $ROOT$keyfile ]]; then
    (umask 077 && openssl rand -hex 32 >"$ROOT$keyfile" &&
      echo "chain-keyed-since $(date +%s)" >>"$ROOT$keyfile")
  fi
  chmod 0600 "$ROOT$keyfile"
  own root:root "$keyfile"
  log "wrote $keyfile"
}

install_application() {
  if [[ -n $ROOT || ! -x $PREFIX/venv/bin/python ]]; then
    run python3 -m venv "$PREFIX/venv"
  fi
  run "$PREFIX/venv/bin/python" -m pip install -q --upgrade pip
  run "$PREFIX/venv/bin/python" -m pip install -q --upgrade "${SRC}[usb]"
  # After `git pull` the version may be unchanged while the code is not: reinstall the project
  # itself (not its dependencies) every time.
  run "$PREFIX/venv/bin/python" -m pip install -q --force-reinstall --no-deps "$SRC"
}

# The user and group first: the config and the TLS key belong to group checkpoint.
create_user() {
  run systemd-sysusers /etc/sysusers.d/checkpoint.conf
  run systemd-tmpfiles --create /etc/tmpfiles.d/checkpoint.conf
}

# USB Wi-Fi adapters plugged in before the udev rule existed get their monitor interface now.
start_wifi_monitors() {
  local dev iface
  if [[ -n $ROOT ]]; then
    log "would run: systemctl start checkpoint-wifi-monitor@IFACE.service for each USB Wi-Fi adapter"
    return 0
  fi
  for dev in /sys/class/net/*; do
    iface=${dev##*/}
    [[ -e $dev/phy80211 && $(cat "$dev/type") == 1 ]] || continue
    [[ $(readlink -f "$dev/device/subsystem") == */usb ]] || continue
    run_ok systemctl start "checkpoint-wifi-monitor@$iface.service"
  done
}

start_services() {
  # The DVB driver may have claimed a dongle plugged in before the blacklist existed.
  run_ok modprobe -r dvb_usb_rtl28xxu rtl2832_sdr rtl2832
  run udevadm control --reload
  # A change event applies GROUP and MODE to a dongle that is already plugged in.
  run udevadm trigger --action=change --subsystem-match=usb
  run_ok systemctl reload dbus.service
  run_ok systemctl try-reload-or-restart NetworkManager.service
  run systemctl daemon-reload
  run_ok systemctl try-restart bluetooth.service
  run_ok systemctl restart systemd-journald.service
  start_wifi_monitors
  run systemctl enable checkpoint.target checkpoint-core.service checkpoint-api.service \
    checkpoint-capture-wifi.service checkpoint-capture-ble.service checkpoint-capture-sdr.service
  run systemctl restart checkpoint.target
  log "done: reboot once so the boot config and the hardware watchdog take effect"
}

# -- the gate's MQTT broker (--broker) ---------------------------------------------------------
BROKER=0
SITE=""
GATE=""
CORE_NAME=core
NODES=()
BROKER_NAMES=()
MQTT_DIR=$ETC/mqtt
MOSQUITTO_CONF=/etc/mosquitto/conf.d/checkpoint.conf
MOSQUITTO_ACL=/etc/mosquitto/checkpoint.acl
# Ten years, as the tablet's certificate: the appliance has no one to renew them on a schedule.
CERT_DAYS=3650

# A name is one MQTT topic level and a certificate's common name: the config's sensor-name shape.
check_name() {
  [[ $2 =~ ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$ ]] || die "$1 '$2': 1-64 letters, digits, '_', '.', ':', '-'"
}

# The site's CA, made once: every node certificate hangs off it, so replacing it re-keys the site.
make_ca() {
  local key=$MQTT_DIR/ca.key crt=$MQTT_DIR/ca.crt
  if [[ -e $ROOT$key && -e $ROOT$crt ]]; then
    log "kept $crt (exists)"
    return 0
  fi
  openssl ecparam -name prime256v1 -genkey -noout -out "$ROOT$key" 2>/dev/null
  chmod 0600 "$ROOT$key"
  openssl req -x509 -new -key "$ROOT$key" -sha256 -days "$CERT_DAYS" \
    -subj "/CN=checkpoint $SITE CA" -out "$ROOT$crt" 2>/dev/null
  chmod 0644 "$ROOT$crt"
  log "wrote $crt and $key"
}

# make_cert NAME SAN EXT: a key and a certificate signed by the CA, made once. The common name
# is what Mosquitto takes as the user name (use_identity_as_username) for the ACL.
make_cert() {
  local name=$1 san=$2 usage=$3 dir=$MQTT_DIR/clients ext csr
  [[ $name == broker ]] && dir=$MQTT_DIR
  if [[ -e $ROOT$dir/$name.crt && -e $ROOT$dir/$name.key ]]; then
    log "kept $dir/$name.crt (exists)"
    return 0
  fi
  ext=$(mktemp)
  csr=$(mktemp)
  {
    [[ -n $san ]] && printf 'subjectAltName=%s\n' "$san"
    printf 'extendedKeyUsage=%s\n' "$usage"
  } >"$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$ROOT$dir/$name.key" 2>/dev/null
  chmod 0640 "$ROOT$dir/$name.key"
  openssl req -new -key "$ROOT$dir/$name.key" -subj "/CN=$name" -out "$csr" 2>/dev/null
  openssl x509 -req -in "$csr" -CA "$ROOT$MQTT_DIR/ca.crt" -CAkey "$ROOT$MQTT_DIR/ca.key" \
    -CAcreateserial -days "$CERT_DAYS" -sha256 -extfile "$ext" -out "$ROOT$dir/$name.crt" 2>/dev/null
  chmod 0644 "$ROOT$dir/$name.crt"
  rm -f "$ext" "$csr"
  log "wrote $dir/$name.crt and $dir/$name.key"
}

install_broker() {
  local host san base node names=()
  [[ -n $SITE && -n $GATE ]] || die "--broker needs --site and --gate"
  ((${#NODES[@]})) || die "--broker needs at least one --node"
  check_name --site "$SITE"
  check_name --gate "$GATE"
  check_name --core "$CORE_NAME"
  for node in "${NODES[@]}"; do
    check_name --node "$node"
    [[ $node != "$CORE_NAME" ]] || die "node '$node' has the core's name"
  done
  if [[ -n $ROOT ]]; then
    log "would run: apt-get install -y mosquitto"
    host=$(cat "$ROOT/etc/hostname" 2>/dev/null || echo checkpoint)
  else
    dpkg-query -W -f='${Status}' mosquitto 2>/dev/null | grep -q "install ok installed" \
      || run apt-get install -y -qq --no-install-recommends mosquitto
    host=$(hostname)
  fi
  make_dir "$ETC" 0750
  make_dir "$MQTT_DIR" 0750
  make_dir "$MQTT_DIR/clients" 0750
  mkdir -p "$ROOT/etc/mosquitto/conf.d"
  make_ca
  names=("DNS:$host" "DNS:$host.local" "DNS:localhost" "IP:127.0.0.1")
  for name in "${BROKER_NAMES[@]}"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
      names+=("IP:$name")
    else
      names+=("DNS:$name")
    fi
  done
  san=$(IFS=,; echo "${names[*]}")
  make_cert broker "$san" serverAuth
  for node in "${NODES[@]}" "$CORE_NAME"; do
    make_cert "$node" "" clientAuth
  done
  # Mosquitto reads the broker's key as its own user; the clients' keys are copied to each node.
  own root:mosquitto "$MQTT_DIR" "$MQTT_DIR/broker.key"
  base="checkpoint/$SITE/$GATE"
  {
    printf '# Written by firmware/provision.sh --broker: who may publish and read what.\n'
    printf '# A sensor node publishes only under its own topics (its certificate names it).\n'
    for node in "${NODES[@]}"; do
      printf 'user %s\ntopic write %s/sensor/%s/#\n\n' "$node" "$base" "$node"
    done
    printf '# The gate core reads its nodes and publishes its alerts and health.\n'
    printf 'user %s\ntopic read %s/sensor/#\ntopic readwrite %s/core/#\n' \
      "$CORE_NAME" "$base" "$base"
  } | write_file "$MOSQUITTO_ACL" 0644
  write_file "$MOSQUITTO_CONF" 0644 <<CONF
# Written by firmware/provision.sh --broker: the gate's broker for Checkpoint Scanner.
# Debian's mosquitto.conf keeps persistence on (/var/lib/mosquitto): the nodes' and the core's
# sessions and their queued QoS 1 batches survive a restart; saved every minute as well.
autosave_interval 60
# A core away for a while must find every batch queued for it, not the first 1000 (the default).
max_queued_messages 0
max_queued_bytes 1073741824
allow_anonymous false
acl_file $MOSQUITTO_ACL

listener 8883
cafile $MQTT_DIR/ca.crt
certfile $MQTT_DIR/broker.crt
keyfile $MQTT_DIR/broker.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
CONF
  run systemctl enable mosquitto.service
  run systemctl restart mosquitto.service
  log "done: copy $MQTT_DIR/ca.crt and clients/NAME.crt + NAME.key to each node's $MQTT_DIR"
}

main() {
  while (($#)); do
    case $1 in
      --root)
        (($# >= 2)) || usage
        ROOT=$(realpath -m "$2")
        shift 2
        ;;
      --broker)
        BROKER=1
        shift
        ;;
      --site | --gate | --node | --core | --broker-name)
        (($# >= 2)) || usage
        case $1 in
          --site) SITE=$2 ;;
          --gate) GATE=$2 ;;
          --node) NODES+=("$2") ;;
          --core) CORE_NAME=$2 ;;
          --broker-name) BROKER_NAMES+=("$2") ;;
        esac
        shift 2
        ;;
      -h | --help) usage ;;
      *)
        log "unknown argument: $1"
        usage
        ;;
    esac
  done
  if [[ -z $ROOT && $(id -u) -ne 0 ]]; then
    die "run as root (sudo), or use --root DIR to stage the files"
  fi
  if [[ $ROOT == / ]]; then
    ROOT=""
  fi
  [[ -f $SRC/pyproject.toml ]] || die "$SRC is not a checkout of the project"
  if [[ -n $ROOT ]]; then
    mkdir -p "$ROOT"
    log "staging into $ROOT"
  fi
  if ((BROKER)); then
    install_broker
    return 0
  fi
  install_packages
  install_system_files
  create_user
  install_boot_config
  install_config
  install_certificate
  install_application
  install_seal_key
  start_services
}

main "$@"
