package hostd

import (
	"fmt"
	"testing"
)

// TestServiceUIDs: a service keeps its uid whatever other services the
// profile adds or in which order; every uid is its own and in range.
func TestServiceUIDs(t *testing.T) {
	a := ServiceUIDs([]string{"sync", "backup"})
	b := ServiceUIDs([]string{"backup", "hello", "sync"})
	if a["sync"] != b["sync"] || a["backup"] != b["backup"] {
		t.Errorf("uids moved: %v then %v", a, b)
	}
	var names []string
	for i := 0; i < 2000; i++ {
		names = append(names, fmt.Sprintf("svc%d", i))
	}
	seen := map[int]string{}
	for n, uid := range ServiceUIDs(names) {
		if uid < serviceUIDBase || uid >= serviceUIDBase+serviceUIDRange {
			t.Errorf("%s: uid %d out of range", n, uid)
		}
		if other, dup := seen[uid]; dup {
			t.Errorf("%s and %s share uid %d", n, other, uid)
		}
		seen[uid] = n
	}
}
