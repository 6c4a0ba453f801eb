package images_test

import (
	"os"
	"syscall"
	"testing"
)

type syscallStat = syscall.Stat_t

func allocated(t *testing.T, p string, st *syscallStat) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	*st = *fi.Sys().(*syscall.Stat_t)
	return st.Blocks * 512
}
