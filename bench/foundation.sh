#!/usr/bin/env bash
# bench/foundation.sh: the foundation's figures, measured in one run on this
# machine so they can be compared with each other:
#   - boot to hostd ready: the image under UEFI (OVMF), on the virtio
#     machine and on the emulated laptop (run --machine laptop), beside a minimal
#     u-root initramfs (init + echo) booted directly with the same kernel,
#     and the same initramfs through the same OVMF and systemd-boot (a disk
#     from thinhost's image writer: bench/minimalimg), so the difference is
#     thinhost's own part;
#   - build time of examples/qemu-test.hcl from its lock file, cold (empty
#     thinhost cache, so every .deb comes from Debian's archive, and an
#     empty Go build cache) and warm (both filled);
#   - host memory in use at idle, from the management API;
#   - sizes of the image (apparent and allocated), the initramfs, the system
#     image (beside the same profile built from the build machine's
#     packages, as before the archive), the kernel and the boot loader.
# It needs what examples/setup-debian.sh installs. Figures, not verdicts:
# the machine is shared and noisy, so run it more than once.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export THINHOST_CACHE="$work/cache"
accel=${BENCH_ACCEL:-tcg}
runs=${BENCH_RUNS:-3}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

go build -o "$work/thinhost" ./cmd/thinhost
# The test guest's initramfs, made with the user's cache so the cold build
# below downloads everything itself.
THINHOST_CACHE= go run ./internal/testguest/mkguest -o "$work/guest-initrd.cpio" >/dev/null
# A copy of the lock file: a build may rewrite it, the bench leaves the
# repository alone.
cp examples/qemu-test.lock "$work/bench.lock"
build() {
	GOCACHE="$work/gocache" "$work/thinhost" build examples/qemu-test.hcl --lock "$work/bench.lock" \
		-var guest_autostart=false -var "guest_initrd=$work/guest-initrd.cpio" -o "$@"
}

# Cold: no thinhost cache, an empty Go build cache for the compiler.
t0=$(now)
build "$work/test.img" >"$work/build-cold.txt" 2>"$work/build-cold.log"
t1=$(now)
build "$work/test.img" >"$work/build-warm.txt" 2>"$work/build-warm.log"
t2=$(now)
cold=$(secs "$t0" "$t1")
warm=$(secs "$t1" "$t2")
debs=$(grep -c '"sha256"' "$work/bench.lock")
downloaded=$(du -sb "$THINHOST_CACHE/sha256" | cut -f1)

# The same profile from the build machine's packages (no packages block,
# so no services; the kernel package as an artifact), for the system
# image's size as it was before the archive.
kernel_sum=$(grep -A8 '"name": "linux-image-[0-9]' "$work/bench.lock" | sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' | head -n 1)
sed -e '/^# The host.s kernel and programs/,$d' \
	-e "s|^  kernel {|  kernel {\n    artifact = \"kernel\"|" examples/qemu-test.hcl >"$work/machine.hcl"
printf 'artifact "kernel" {\n  path = "%s"\n}\n' "$THINHOST_CACHE/sha256/$kernel_sum" >>"$work/machine.hcl"
"$work/thinhost" build "$work/machine.hcl" -var guest_autostart=false -var "guest_initrd=$work/guest-initrd.cpio" \
	-o "$work/machine.img" >"$work/build-machine.txt" 2>&1

# The image, booted as a user would boot it.
# The same image on the emulated laptop (a USB stick on xHCI, NVMe, e1000e,
# HDA, VGA: drivers by hardware), in the same run, alternating.
image_ready=()
laptop_ready=()
for _ in $(seq "$runs"); do
	out=$("$work/thinhost" run "$work/test.img" --check --accel "$accel" --snapshot 2>/dev/null)
	image_ready+=("$(sed -n 's/^ready in \([0-9.]*\)s.*/\1/p' <<<"$out")")
	out=$("$work/thinhost" run "$work/test.img" --check --machine laptop --accel "$accel" --snapshot 2>/dev/null)
	laptop_ready+=("$(sed -n 's/^ready in \([0-9.]*\)s.*/\1/p' <<<"$out")")
done

# A minimal u-root initramfs (init, echo as the uinit, gosh), booted directly
# with the same kernel: what UEFI, systemd-boot and hostd add on top.
kernel=$(ls "$THINHOST_CACHE"/debs/*/boot/vmlinuz-* | head -n 1)
GOCACHE="$work/gocache" go run github.com/u-root/u-root -o "$work/minimal.cpio" -uinitcmd="echo bench: ready" \
	github.com/u-root/u-root/cmds/core/init github.com/u-root/u-root/cmds/core/echo \
	github.com/u-root/u-root/cmds/core/gosh >/dev/null 2>&1
# minimal_boot QEMU-ARGS...: seconds from QEMU's start to the minimal
# initramfs' "bench: ready" on the serial console, or "failed".
minimal_boot() {
	local log="$work/minimal-serial.log" t0 t1="" qemu_pid
	: >"$log"
	t0=$(now)
	timeout 180 qemu-system-x86_64 -accel "$accel" -cpu max -m 1024 -smp 2 -machine q35 \
		-nodefaults -display none -serial "file:$log" -no-reboot "$@" </dev/null >/dev/null 2>&1 &
	qemu_pid=$!
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if grep -q "bench: ready" "$log"; then
			t1=$(now)
			break
		fi
		sleep 0.02
	done
	kill "$qemu_pid" 2>/dev/null || true
	wait "$qemu_pid" 2>/dev/null || true
	if [ -n "$t1" ]; then secs "$t0" "$t1"; else echo failed; fi
}
direct_ready=()
for _ in $(seq "$runs"); do
	direct_ready+=("$(minimal_boot -kernel "$kernel" -initrd "$work/minimal.cpio" -append "console=ttyS0,115200 quiet")")
done

# The same minimal initramfs and kernel on a disk written by thinhost's
# image writer, booted through the same OVMF and systemd-boot as the
# image: the firmware's and the loader's share, apart from thinhost's.
loader=$(ls "$THINHOST_CACHE"/debs/*/usr/lib/systemd/boot/efi/systemd-bootx64.efi | head -n 1)
go run ./bench/minimalimg -loader "$loader" -kernel "$kernel" -initrd "$work/minimal.cpio" \
	-cmdline "console=ttyS0,115200 quiet" -o "$work/minimal.img"
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "bench: none of $* found" >&2; return 1; }
ovmf_code=$(first /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd)
ovmf_vars=$(first /usr/share/OVMF/OVMF_VARS_4M.fd /usr/share/OVMF/OVMF_VARS.fd)
uefi_ready=()
for _ in $(seq "$runs"); do
	cp "$ovmf_vars" "$work/vars.fd"
	uefi_ready+=("$(minimal_boot -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" \
		-drive "if=pflash,format=raw,file=$work/vars.fd" -drive "if=virtio,format=raw,snapshot=on,file=$work/minimal.img")")
done

# hostd's steps on a first boot (the data partition made), and on the
# next boot of the same disk, as every later boot of a user's goes: host
# memory in use at idle then (total minus available, from the API), 20 s
# after ready.
cp --sparse=always "$work/test.img" "$work/used.img"
"$work/thinhost" run "$work/used.img" --check -v --accel "$accel" </dev/null >"$work/first.log" 2>&1 || true
port=$((20000 + RANDOM % 20000))
"$work/thinhost" run "$work/used.img" --snapshot --accel "$accel" --forward "$port:8484" </dev/null >"$work/idle.log" 2>&1 &
run_pid=$!
for _ in $(seq 300); do grep -q "hostd ready" "$work/idle.log" && break; sleep 0.2; done
# The forward arrives on the host's network, where the API speaks HTTPS
# with the host's own certificate: ctl pins the fingerprint on the console.
export THINHOST_FINGERPRINT=$(sed -n 's/.*certificate sha256 \([0-9A-F:]*\);.*/\1/p' "$work/idle.log" | tail -n 1)
sleep 20
"$work/thinhost" ctl --addr "127.0.0.1:$port" --token qemu-test-token-not-secret status >"$work/idle-status.txt" 2>/dev/null || true
idle=$(awk '/^memory/ { print $6 - $2 " MiB used of " $6 " MiB" }' "$work/idle-status.txt")
idle_parts=$(sed -n 's/^ *in use: //p' "$work/idle-status.txt")
"$work/thinhost" ctl --addr "127.0.0.1:$port" --token qemu-test-token-not-secret poweroff >/dev/null 2>&1 || true
wait "$run_pid" 2>/dev/null || true

initrd_size=$(sed -n 's/^initramfs \([^,]*\),.*/\1/p' "$work/build-warm.txt")
kernel_size=$(stat -c %s "$kernel")
loader_size=$(stat -c %s "$(ls "$THINHOST_CACHE"/debs/*/usr/lib/systemd/boot/efi/systemd-bootx64.efi | head -n 1)")
apparent=$(stat -c %s "$work/test.img")
allocated=$(($(stat -c %b "$work/test.img") * $(stat -c %B "$work/test.img")))
minimal_size=$(stat -c %s "$work/minimal.cpio")
squashfs_size() {
	local start
	start=$(sgdisk -i 2 "$1" | awk '/First sector/ {print $3}')
	unsquashfs -s -o $((start * 512)) "$1" 2>/dev/null | sed -n 's/^Filesystem size \([0-9]*\) bytes.*/\1/p'
}
system_size=$(squashfs_size "$work/test.img")
system_files=$(grep -c '"path"' "$work/test.img.manifest.json")
machine_size=$(squashfs_size "$work/machine.img")
machine_files=$(grep -c '"path"' "$work/machine.img.manifest.json")

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "thinhost foundation bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, accel $accel, $runs runs each"
echo
printf '%-44s %s\n' "boot to ready, image (UEFI + systemd-boot + hostd)" "median $(median "${image_ready[@]}") s  (runs: ${image_ready[*]})"
printf '%-44s %s\n' "boot to ready, image, emulated laptop (USB)" "median $(median "${laptop_ready[@]}") s  (runs: ${laptop_ready[*]})"
printf '%-44s %s\n' "boot to ready, minimal u-root, direct kernel" "median $(median "${direct_ready[@]}") s  (runs: ${direct_ready[*]})"
printf '%-44s %s\n' "boot to ready, minimal u-root, UEFI + loader" "median $(median "${uefi_ready[@]}") s  (runs: ${uefi_ready[*]})"
printf '%-44s %s\n' "thinhost's own part (image - minimal UEFI)" "$(awk -v a="$(median "${image_ready[@]}")" -v b="$(median "${uefi_ready[@]}")" 'BEGIN { printf "%.1f s", a - b }')"
steps() { sed -n 's/.*msg=ready .*since_start=\([^ ]*\) .*steps="\([^"]*\)".*/\1: \2/p' "$1" | head -n 1; }
printf '%-44s %s\n' "hostd's steps to ready, first boot" "$(steps "$work/first.log")"
printf '%-44s %s\n' "hostd's steps to ready, next boot (idle)" "$(steps "$work/idle.log")"
printf '%-44s %s\n' "host memory at idle (goal <= 128 MiB)" "${idle:-not measured}"
printf '%-44s %s\n' "  where it goes (ctl status)" "${idle_parts:-not measured}"
printf '%-44s %s\n' "build, cold (empty caches)" "$cold s ($debs .debs, $(mib "$downloaded") downloaded from the archive)"
printf '%-44s %s\n' "build, warm" "$warm s"
printf '%-44s %s\n' "image size" "$(mib "$apparent") apparent, $(mib "$allocated") allocated"
printf '%-44s %s\n' "initramfs (zstd)" "$initrd_size"
printf '%-44s %s\n' "minimal u-root initramfs (uncompressed cpio)" "$(mib "$minimal_size")"
printf '%-44s %s\n' "system image (squashfs, LZ4), archive" "$(mib "${system_size:-0}"), $system_files files"
printf '%-44s %s\n' "system image, build machine's packages" "$(mib "${machine_size:-0}"), $machine_files files (no services)"
printf '%-44s %s\n' "kernel" "$(mib "$kernel_size")"
printf '%-44s %s\n' "boot loader (systemd-boot)" "$(mib "$loader_size")"
