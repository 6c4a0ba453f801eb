#!/usr/bin/env bash
# bench/share.sh: share throughput, measured in one run on this machine:
#   - a 1 GiB file written and read with smbclient through
#     `thinhost run --forward` into the booted example image (TCG here);
#   - beside it, a plain TCP stream of the same 1 GiB through the same
#     kind of forward (QEMU user networking) into the booted host, to a sink
#     (hostd's POST /v1/discard): the raw path SMB rides on; the goal is SMB
#     at 0.8x or more of it;
#   - for reference, a plain smbd on this machine over loopback.
# It needs what examples/setup-debian.sh installs, and curl. Figures, not
# verdicts: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
qemu_pid=""
smbd_pid=""
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
	[ -n "$smbd_pid" ] && kill "$smbd_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
accel=${BENCH_ACCEL:-tcg}
api=${BENCH_API_PORT:-18486}
smb=${BENCH_SMB_PORT:-44446}
size_mib=${BENCH_MIB:-1024}
token=qemu-test-token-not-secret
password=bench-share-password

now() { date +%s.%N; }
rate() { awk -v a="$1" -v b="$2" -v m="$size_mib" 'BEGIN { printf "%.1f", m / (b - a) }'; }
# smb_rates SMBCLIENT-COMMAND...: puts the file and gets it back; prints the
# write and read rates.
smb_rates() {
	local t0 t1 t2
	t0=$(now)
	"$@" -c "put $work/file.bin file.bin" >/dev/null 2>&1
	t1=$(now)
	"$@" -c "get file.bin $work/back.bin" >/dev/null 2>&1
	t2=$(now)
	cmp -s "$work/file.bin" "$work/back.bin" || { echo "bench: the file came back different" >&2; exit 1; }
	rm -f "$work/back.bin"
	echo "$(rate "$t0" "$t1") $(rate "$t1" "$t2")"
}

go build -o "$work/thinhost" ./cmd/thinhost
go run ./internal/testguest/mkguest -o "$work/guest-initrd.cpio" >/dev/null
"$work/thinhost" build examples/qemu-test.hcl -o "$work/test.img" -var "guest_initrd=$work/guest-initrd.cpio" \
	-var guest_autostart=false -var "share_password=$password" >/dev/null 2>&1
# Room for the file: hostd grows the data partition into what is added.
truncate -s "+$((size_mib * 2))M" "$work/test.img"
head -c "$((size_mib << 20))" /dev/urandom >"$work/file.bin"

"$work/thinhost" run "$work/test.img" --accel "$accel" --memory 2GiB --cpus 2 --forward "$api:8484" --forward "$smb:445" \
	</dev/null >"$work/console.log" 2>&1 &
qemu_pid=$!
until grep -q "thinhost: hostd ready" "$work/console.log"; do
	kill -0 "$qemu_pid" 2>/dev/null || { tail -30 "$work/console.log" >&2; exit 1; }
	sleep 0.2
done

# The forward arrives on the host's network, where the API speaks HTTPS
# with the host's own certificate: ctl pins the fingerprint on the console.
export THINHOST_FINGERPRINT=$(sed -n 's/.*certificate sha256 \([0-9A-F:]*\);.*/\1/p' "$work/console.log" | tail -n 1)

# Raw: the bytes through the forward into a sink in the host (HTTPS, as
# SMB on the host's network is encrypted; curl -k: throughput, not trust).
t0=$(now)
curl -k -sS -o /dev/null -X POST -T "$work/file.bin" -H "Authorization: Bearer $token" "https://127.0.0.1:$api/v1/discard"
t1=$(now)
raw=$(rate "$t0" "$t1")
t0=$(now)
curl -k -sS -o /dev/null -H "Authorization: Bearer $token" "https://127.0.0.1:$api/v1/source?bytes=$((size_mib << 20))"
t1=$(now)
raw_out=$(rate "$t0" "$t1")

# SMB through the forward.
read -r smb_put smb_get < <(smb_rates smbclient //127.0.0.1/files -p "$smb" -U "thin%$password")
"$work/thinhost" ctl --addr "127.0.0.1:$api" --token "$token" poweroff >/dev/null
while kill -0 "$qemu_pid" 2>/dev/null; do sleep 0.2; done
qemu_pid=""

# Reference: a plain smbd here over loopback, the same settings.
mkdir -p "$work/samba"/{private,lock,state,cache,pid,ncalrpc} "$work/share"
chmod 755 "$work" # mktemp's 0700 would keep the share user out
id thin >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin thin
chown thin "$work/share"
cat >"$work/samba/smb.conf" <<CONF
[global]
  server min protocol = SMB2_02
  smb ports = 4446
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  map to guest = Never
  load printers = no
  passdb backend = tdbsam:$work/samba/private/passdb.tdb
  private dir = $work/samba/private
  lock directory = $work/samba/lock
  state directory = $work/samba/state
  cache directory = $work/samba/cache
  pid directory = $work/samba/pid
  ncalrpc dir = $work/samba/ncalrpc
[files]
  path = $work/share
  read only = no
  valid users = thin
CONF
printf '%s\n%s\n' "$password" "$password" | smbpasswd -c "$work/samba/smb.conf" -s -a thin >/dev/null
# Its own process group (smbd's default): at exit smbd signals its group.
smbd --foreground -s "$work/samba/smb.conf" >/dev/null 2>&1 &
smbd_pid=$!
for _ in $(seq 100); do
	smbclient //127.0.0.1/files -p 4446 -U "thin%$password" -c ls >/dev/null 2>&1 && break
	sleep 0.2
done
read -r local_put local_get < <(smb_rates smbclient //127.0.0.1/files -p 4446 -U "thin%$password")

echo "share throughput, ${size_mib} MiB file ($accel host; one run)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf '  raw TCP into the host (forward -> sink)   %7s MiB/s\n' "$raw"
printf '  raw TCP out of the host (source -> here)  %7s MiB/s\n' "$raw_out"
printf '  SMB write through the forward             %7s MiB/s  (%s of raw in)\n' "$smb_put" "$(ratio "$smb_put" "$raw")"
printf '  SMB read through the forward              %7s MiB/s  (%s of raw out, %s of raw in)\n' "$smb_get" "$(ratio "$smb_get" "$raw_out")" "$(ratio "$smb_get" "$raw")"
printf '  plain smbd on this machine, loopback      %7s MiB/s write, %s MiB/s read\n' "$local_put" "$local_get"
