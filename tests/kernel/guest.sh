#!/bin/bash
# Inside the test VM (vm.py boots it with this as its only command): load the virtual radio
# drivers from the kernel package's own modules, then run every scenario in one Python process.
# Usage: guest.sh OUT_DIR PYTHON
set -u
out=$1
python=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
echo "boot_uptime_s $(cut -d' ' -f1 /proc/uptime)" > "$out/guest.txt"
echo "kernel $(uname -r)" >> "$out/guest.txt"
# Three hwsim radios: the capture interface, an access point, a station.
modprobe mac80211_hwsim radios=3 2>> "$out/guest.txt" || echo "modprobe mac80211_hwsim failed" >> "$out/guest.txt"
modprobe hci_vhci 2>> "$out/guest.txt" || echo "modprobe hci_vhci failed" >> "$out/guest.txt"
{ lsmod | grep -E "^(mac80211_hwsim|hci_vhci) "; ls -l /dev/vhci; } >> "$out/guest.txt" 2>&1
cd "$here/../.."
"$python" "$here/radio_scenarios.py" --out "$out" > "$out/scenarios.out" 2>&1
echo "exit $?" >> "$out/guest.txt"
dmesg > "$out/dmesg.txt"
echo "end_uptime_s $(cut -d' ' -f1 /proc/uptime)" >> "$out/guest.txt"
