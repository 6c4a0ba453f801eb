#!/usr/bin/env bash
# bench/guest.sh: the guest figures, from one boot of examples/qemu-test.hcl
# under QEMU on this machine (TCG here, so the test guest runs under TCG
# inside TCG):
#   - hostd ready -> the test guest's first console line (autostart);
#   - `ctl vm guest snapshot` (ACPI shutdown, base frozen, restart), and
#     from it to the guest's next first line;
#   - `ctl vm guest reset` (overlay dropped, restart), and from it to the
#     guest's next first line;
#   - host power-off with the guest running (ACPI to the guest first);
#   - the guest's writes (64 MiB, flushed) to its own disk, to the share
#     through the host-only link and to the same share through QEMU's NAT:
#     hostd's link, smbd with hostd's smb.conf and the Linux test guest
#     under QEMU on this machine, in a network namespace of their own
#     (TestGuestLinkShare), in the same run.
# It needs what examples/setup-debian.sh installs. Figures, not verdicts.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
qemu_pid=""
trap '[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"' EXIT
accel=${BENCH_ACCEL:-tcg}
port=${BENCH_PORT:-18485}
token=qemu-test-token-not-secret

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

go build -o "$work/thinhost" ./cmd/thinhost
go run ./internal/testguest/mkguest -o "$work/guest-initrd.cpio" >/dev/null
"$work/thinhost" build examples/qemu-test.hcl -var "guest_initrd=$work/guest-initrd.cpio" -o "$work/test.img" >/dev/null 2>&1

ctl() { "$work/thinhost" ctl --addr "127.0.0.1:$port" --token "$token" "$@"; }
console="$work/console.log"
# wait_for TEXT N: until the host console holds TEXT N times; prints the time.
wait_for() {
	while [ "$(grep -c -- "$1" "$console" 2>/dev/null || true)" -lt "$2" ]; do
		kill -0 "$qemu_pid" 2>/dev/null || { echo "bench: QEMU exited; console:" >&2; tail -30 "$console" >&2; exit 1; }
		sleep 0.1
	done
	now
}

"$work/thinhost" run "$work/test.img" --accel "$accel" --memory 1536MiB --cpus 2 --forward "$port:8484" </dev/null >"$console" 2>&1 &
qemu_pid=$!
t_ready=$(wait_for "thinhost: hostd ready" 1)
# The forward arrives on the host's network, where the API speaks HTTPS
# with the host's own certificate: ctl pins the fingerprint on the console.
export THINHOST_FINGERPRINT=$(sed -n 's/.*certificate sha256 \([0-9A-F:]*\);.*/\1/p' "$console" | tail -n 1)
t_first=$(wait_for "thinhost-guest: up" 1)
wait_for "thinhost-guest: wrote=boot-1" 1 >/dev/null

t0=$(now)
ctl vm guest snapshot >/dev/null
t1=$(now)
t_snap_first=$(wait_for "thinhost-guest: up" 2)
wait_for "thinhost-guest: wrote=boot-2" 1 >/dev/null

t2=$(now)
ctl vm guest reset >/dev/null
t3=$(now)
t_reset_first=$(wait_for "thinhost-guest: up" 3)
wait_for "thinhost-guest: found=boot-1" 2 >/dev/null

t4=$(now)
ctl poweroff >/dev/null
while kill -0 "$qemu_pid" 2>/dev/null; do sleep 0.1; done
t5=$(now)
qemu_pid=""

echo "guest figures ($accel host, the test guest under TCG inside it; one run)"
printf '  hostd ready -> guest first console line   %6ss\n' "$(secs "$t_ready" "$t_first")"
printf '  ctl vm snapshot (ACPI stop, freeze, start) %6ss\n' "$(secs "$t0" "$t1")"
printf '    then -> guest first console line         %6ss\n' "$(secs "$t1" "$t_snap_first")"
printf '  ctl vm reset (drop overlay, start)         %6ss\n' "$(secs "$t2" "$t3")"
printf '    then -> guest first console line         %6ss\n' "$(secs "$t3" "$t_reset_first")"
printf '  host power-off with the guest running      %6ss\n' "$(secs "$t4" "$t5")"

mib=${BENCH_GUEST_MIB:-64}
share_log="$work/share.log"
THINHOST_E2E=1 THINHOST_BENCH_GUEST_MIB=$mib go test ./hostd -run '^TestGuestLinkShare$' -count=1 -v >"$share_log" 2>&1 ||
	{ echo "bench: TestGuestLinkShare failed:" >&2; tail -30 "$share_log" >&2; exit 1; }
line=$(grep -o 'thinhost-guest: bench .*' "$share_log" | tail -n 1)
echo "guest writes, ${mib} MiB flushed (the Linux test guest under $accel on this machine):"
for what in disk link nat; do
	printf '  %-5s %s\n' "$what" "$(echo "$line" | grep -o "$what=[^ ]*" | cut -d= -f2)"
done
echo "  (disk: its own virtio disk; link: the share over the host-only link; nat: the share through QEMU's user network)"
