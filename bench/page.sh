#!/usr/bin/env bash
# bench/page.sh: the host's page, measured in one run on this machine:
#   - how long the overview, a refreshed section and the log page take,
#     beside GET /v1/status (the JSON the page is drawn from), each through
#     `thinhost run --forward` into the booted example image (TCG here), so
#     the difference is the page's own cost;
#   - hostd's resident memory (ctl status) when it is ready, before any page
#     was asked for, and after the loads and a quiet while.
# It needs what examples/setup-debian.sh installs, and curl. Figures, not
# verdicts: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
qemu_pid=""
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
accel=${BENCH_ACCEL:-tcg}
api=${BENCH_API_PORT:-18487}
loads=${BENCH_LOADS:-30}
token=qemu-test-token-not-secret
base="https://127.0.0.1:$api"

go build -o "$work/thinhost" ./cmd/thinhost
go run ./internal/testguest/mkbare -o "$work/bare.elf" >/dev/null
"$work/thinhost" build examples/qemu-test.hcl -o "$work/test.img" --lock "$work/test.lock" \
	-var "test_guest=$work/bare.elf" >/dev/null 2>&1
"$work/thinhost" run "$work/test.img" --accel "$accel" --memory 1GiB --cpus 2 --forward "$api:8484" \
	</dev/null >"$work/console.log" 2>&1 &
qemu_pid=$!
until grep -q "thinhost: hostd ready" "$work/console.log"; do
	kill -0 "$qemu_pid" 2>/dev/null || { tail -30 "$work/console.log" >&2; exit 1; }
	sleep 0.2
done
# The forward arrives on the host's network, where the API speaks HTTPS
# with the host's own certificate: ctl pins the fingerprint on the console.
export THINHOST_FINGERPRINT=$(sed -n 's/.*certificate sha256 \([0-9A-F:]*\);.*/\1/p' "$work/console.log" | tail -n 1)
ctl() { "$work/thinhost" ctl --addr "127.0.0.1:$api" --token "$token" "$@"; }
hostd_rss() { ctl status | sed -n 's/.*(hostd: \(.*\))$/\1/p'; }
sleep 10 # the guest starts; hostd settles
rss_ready=$(hostd_rss)

# median_ms CURL-ARGS...: the median of $loads requests, in milliseconds.
median_ms() {
	for _ in $(seq "$loads"); do
		curl -k -sS -o /dev/null -w '%{time_total}\n' "$@"
	done | sort -n | awk '{ t[NR] = $1 } END { printf "%.1f", 1000 * t[int((NR + 1) / 2)] }'
}
curl -k -sS -o /dev/null -c "$work/jar" -H "Origin: $base" -d "secret=$token" "$base/login"
status=$(median_ms -H "Authorization: Bearer $token" "$base/v1/status")
overview=$(median_ms -b "$work/jar" "$base/")
part=$(median_ms -b "$work/jar" "$base/part/guests")
logpage=$(median_ms -b "$work/jar" "$base/log")
bytes=$(curl -k -sS -b "$work/jar" "$base/" | wc -c)
sleep 10
rss_after=$(hostd_rss)
ctl poweroff >/dev/null
while kill -0 "$qemu_pid" 2>/dev/null; do sleep 0.2; done
qemu_pid=""

echo "the host's page ($accel host, through the forward; median of $loads loads; one run)"
printf '  GET /v1/status (JSON, for comparison)   %6s ms\n' "$status"
printf '  GET / (the overview, %s bytes)       %6s ms\n' "$bytes" "$overview"
printf '  GET /part/guests (a refresh)            %6s ms\n' "$part"
printf '  GET /log (500 lines)                    %6s ms\n' "$logpage"
printf '  hostd resident: %s when ready, %s after %s loads of each and 10 s\n' "$rss_ready" "$rss_after" "$loads"
