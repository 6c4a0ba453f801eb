#!/usr/bin/env bash
# bench/flash.sh: `thinhost flash` against `dd bs=4M conv=fsync` on the same
# loop-backed device, in one run. The image is 8 GiB with about half a GiB
# allocated: the example profile at image_size = "8GiB", plus 512 MiB of
# random data in the data partition (a host with some files on it). Both
# writes are verified: flash by its own read-back, dd by cmp against the
# image. Needs root (loop devices) and what examples/setup-debian.sh
# installs. Prints figures; the goal is flash at least 5x faster than dd.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/flash.sh: needs root for loop devices" >&2; exit 1; }

work=$(mktemp -d)
dev=""
cleanup() { [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export THINHOST_CACHE="${THINHOST_CACHE:-$work/cache}"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

go build -o "$work/thinhost" ./cmd/thinhost
sed -e 's|image_size  = "2GiB"|image_size  = "8GiB"|' \
	-e "s|default     = \"guest-initrd.cpio\"|default     = \"$PWD/examples/guest-initrd.cpio\"|" \
	examples/qemu-test.hcl >"$work/bench.hcl"
"$work/thinhost" build "$work/bench.hcl" -o "$work/bench.img" --lock examples/qemu-test.lock >/dev/null 2>&1
# 512 MiB of files in the data partition, 16 MiB past its start.
data_start=$(sgdisk -i 4 "$work/bench.img" | awk '/First sector/ {print $3}')
dd if=/dev/urandom of="$work/bench.img" bs=1M seek=$((data_start / 2048 + 16)) count=512 conv=notrunc status=none
size=$(stat -c %s "$work/bench.img")
alloc=$(($(stat -c %b "$work/bench.img") * $(stat -c %B "$work/bench.img")))

# The "stick": a file of the image's size plus 256 MiB, fully allocated.
fallocate -l $((size + 256 * 1048576)) "$work/stick.raw"
dev=$(losetup --find --show "$work/stick.raw")

t0=$(now)
"$work/thinhost" flash "$work/bench.img" "$dev" --yes --allow-fixed >"$work/flash.txt" 2>&1
t1=$(now)
flash_total=$(secs "$t0" "$t1")
sgdisk -v "$dev" | grep -q "No problems found" || { echo "bench: sgdisk -v failed after flash" >&2; exit 1; }

t0=$(now)
dd if="$work/bench.img" of="$dev" bs=4M conv=fsync status=none
t1=$(now)
cmp -n "$size" "$work/bench.img" "$dev"
t2=$(now)
dd_write=$(secs "$t0" "$t1")
dd_total=$(secs "$t0" "$t2")

mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
echo "thinhost flash bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, loop device on $(df --output=source "$work" | tail -1)"
echo
printf '%-36s %s\n' "image" "$(mib "$size") apparent, $(mib "$alloc") allocated"
printf '%-36s %s\n' "thinhost flash (write + verify)" "$flash_total s  ($(grep -E '^(wrote|verified)' "$work/flash.txt" | tr '\n' ' '))"
printf '%-36s %s\n' "dd bs=4M conv=fsync (write)" "$dd_write s"
printf '%-36s %s\n' "dd + cmp (write + verify)" "$dd_total s"
printf '%-36s %s\n' "speed-up, both verified" "$(awk -v a="$dd_total" -v b="$flash_total" 'BEGIN { printf "%.1fx", a / b }')"
