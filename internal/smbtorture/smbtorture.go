// Package smbtorture runs Samba's own protocol test suite (smbtorture, from
// Debian's samba-testsuite) against an SMB share and counts what passed,
// and starts a stock smbd with a plain share to compare against. The share
// conformance test and bench/share-conformance.sh use it: thinhost's share
// must pass at least what a default Samba of the same version passes.
package smbtorture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Suites are the smbtorture suites the share is held to: what Windows
// programs lean on (full-rights opens, byte-range locks, oplocks and
// leases, durable handles, alternate data streams) and the everyday
// create/read/write/rename/list/info calls.
var Suites = []string{
	"smb2.connect", "smb2.read", "smb2.rw", "smb2.lock", "smb2.oplock", "smb2.lease",
	"smb2.rename", "smb2.dir", "smb2.streams", "smb2.durable-open", "smb2.durable-v2-open",
	"smb2.create", "smb2.delete-on-close-perms", "smb2.getinfo", "smb2.setinfo",
}

// Short is the subset the end-to-end suite runs: every suite but oplock
// and lease, whose break timeouts take minutes, and dir, whose thousands of
// round trips take over two minutes through QEMU's user network under TCG
// (the full set runs in bench/share-conformance.sh).
var Short = []string{
	"smb2.connect", "smb2.read", "smb2.rw", "smb2.lock", "smb2.rename",
	"smb2.streams", "smb2.durable-open", "smb2.durable-v2-open", "smb2.create",
	"smb2.delete-on-close-perms", "smb2.getinfo", "smb2.setinfo",
}

// Target is a share and the account that reaches it.
type Target struct {
	// Host and Port are where the server listens.
	Host string
	Port int
	// Share is the share's name; User and Password the account.
	Share, User, Password string
}

// Result is one suite's outcome.
type Result struct {
	Suite string
	// Passed, Failed (failure, error or an unexpected result) and Skipped
	// count subtests.
	Passed, Failed, Skipped int
	// Failures names the subtests that did not pass.
	Failures []string
	// Output is smbtorture's whole output.
	Output string
}

// Total is how many subtests ran to a verdict (skips excluded).
func (r Result) Total() int { return r.Passed + r.Failed }

func (r Result) String() string {
	return fmt.Sprintf("%s: %d of %d passed, %d skipped", r.Suite, r.Passed, r.Total(), r.Skipped)
}

// Parse counts the verdicts in smbtorture's output: one "success: NAME",
// "failure: NAME [", "error: NAME [", "skip: NAME [" (or xfail/uxsuccess)
// line per subtest, as its subunit-style default UI prints them.
func Parse(suite, out string) Result {
	r := Result{Suite: suite, Output: out}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		verdict, name, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSpace(name), " [")
		switch verdict {
		case "success":
			r.Passed++
		case "failure", "error", "xfail", "uxsuccess":
			r.Failed++
			r.Failures = append(r.Failures, name)
		case "skip":
			r.Skipped++
		}
	}
	sort.Strings(r.Failures)
	return r
}

// Run runs one suite against t with the smbtorture at path. A suite that
// reached no verdict at all (no connection, an unknown suite) is an error
// carrying smbtorture's output; failing subtests are not: they are counted.
func Run(ctx context.Context, path string, t Target, suite string) (Result, error) {
	args := []string{fmt.Sprintf("//%s/%s", t.Host, t.Share), "-p", fmt.Sprint(t.Port),
		"-U", t.User + "%" + t.Password, suite}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := Parse(suite, out.String())
	if r.Total()+r.Skipped == 0 {
		return r, fmt.Errorf("run smbtorture %s against //%s:%d/%s: no subtest ran (%v):\n%s", suite, t.Host, t.Port, t.Share, err, tail(out.String(), 20))
	}
	// smbtorture exits non-zero when any subtest fails: counted above.
	return r, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Row is one suite on both servers.
type Row struct {
	Suite       string
	Ours, Stock Result
}

// Table renders rows as the README's Markdown table.
func Table(rows []Row, ours, stock string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| suite | %s | %s |\n|---|---|---|\n", ours, stock)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d of %d | %d of %d |\n", r.Suite, r.Ours.Passed, r.Ours.Total(), r.Stock.Passed, r.Stock.Total())
	}
	return b.String()
}

// Shortfalls names each suite where ours passed fewer subtests than the
// stock server, with the subtests only the stock server passed.
func Shortfalls(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if r.Ours.Passed >= r.Stock.Passed {
			continue
		}
		failed := map[string]bool{}
		for _, f := range r.Stock.Failures {
			failed[f] = true
		}
		var only []string
		for _, f := range r.Ours.Failures {
			if !failed[f] {
				only = append(only, f)
			}
		}
		out = append(out, fmt.Sprintf("%s: %d passed, stock smbd %d (failing here only: %s)",
			r.Suite, r.Ours.Passed, r.Stock.Passed, strings.Join(only, ", ")))
	}
	return out
}
