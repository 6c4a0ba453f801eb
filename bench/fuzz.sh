#!/usr/bin/env bash
# bench/fuzz.sh: every native Go fuzz target of the repository, each for
# FUZZTIME (default 60s), one after the other. The seed corpora run in
# `go test` already; this searches beyond them. Prints, per target, the
# executions, the new inputs found interesting and whether it found a
# failure (an escape: a value that became syntax, a panic, a table read
# that is not on the disk). Not part of CI: it takes minutes and both
# cores.
#   bench/fuzz.sh            # every target, 60 s each
#   FUZZTIME=10s bench/fuzz.sh ./hostd FuzzRenderSMBConf
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-60s}"

targets() {
	if [ $# -eq 2 ]; then
		echo "$1 $2"
		return
	fi
	grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
		pkg="./$(dirname "${f#./}")"
		grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r fn; do
			echo "$pkg $fn"
		done
	done | sort -u
}

failed=0
printf '%-28s %-26s %12s %10s  %s\n' package target execs new result
while read -r pkg fn; do
	out=$(go test "$pkg" -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" 2>&1)
	status=$?
	execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | awk '{print $2}')
	new=$(echo "$out" | grep -o 'new interesting: [0-9]*' | tail -1 | awk '{print $3}')
	result=ok
	if [ $status -ne 0 ]; then
		result="FAILED (see testdata/fuzz/$fn in $pkg)"
		failed=$((failed + 1))
		echo "$out" | tail -20 >&2
	fi
	printf '%-28s %-26s %12s %10s  %s\n' "$pkg" "$fn" "${execs:-?}" "${new:-?}" "$result"
done < <(targets "$@")
echo "failures: $failed"
[ $failed -eq 0 ]
