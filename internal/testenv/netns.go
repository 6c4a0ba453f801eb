package testenv

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// netnsEnv names the test a child runs in its own network namespace.
const netnsEnv = "THINHOST_NETNS_TEST"

// InNetNS runs top-level test t in a network namespace of its own, where
// it may make bridges, taps and addresses without touching this machine's
// network: it runs the test binary again for t alone under
// `unshare --net` and reports that run's output and result. It returns
// true in that child (loopback up), false in the parent, which then has
// nothing more to do. prepare, when set, runs in the parent first, where
// the network is (downloads), and returns NAME=VALUE entries for the
// child's environment.
func InNetNS(t *testing.T, prepare func() []string) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("loopback up in the namespace: %v: %s", err, out)
		}
		return true
	}
	NeedRoot(t)
	unshare := NeedTool(t, "unshare")
	NeedTool(t, "ip")
	args := []string{"--net", os.Args[0], "-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$", "-test.v", "-test.count=1"}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
	if prepare != nil {
		cmd.Env = append(cmd.Env, prepare()...)
	}
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(l)
	}
	if err != nil {
		t.Fatalf("%s in its network namespace: %v", t.Name(), err)
	}
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skip("skipped in its network namespace")
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s did not pass in its network namespace", t.Name())
	}
	return false
}
