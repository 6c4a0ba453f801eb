#!/usr/bin/env bash
# bench/share-conformance.sh: Samba's own protocol tests (smbtorture, from
# samba-testsuite) on the booted example image's share, every suite the
# share is held to, beside a stock smbd of the same version with a plain
# share in the same run. It is TestShareConformance with
# THINHOST_SMBTORTURE=full: the end-to-end suite runs a shorter subset.
# Prints the README's table. Needs what examples/setup-debian.sh installs,
# and root (the stock smbd and its share user). About 15 minutes under TCG.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
THINHOST_E2E=1 THINHOST_SMBTORTURE=full go test -count=1 -timeout 60m -run '^TestShareConformance$' -v ./cmd/thinhost/e2e >"$log" 2>&1 || status=$?
echo "smbtorture: thinhost's share (TCG host, through run --forward) beside a stock smbd on this machine; one run"
sed -n 's/^ *\(|.*|\)$/\1/p' "$log"
if [ "$status" -ne 0 ]; then
	echo "bench: TestShareConformance failed:" >&2
	grep -E -- '--- FAIL|smbtorture_test.go' "$log" | tail -20 >&2
fi
exit "$status"
