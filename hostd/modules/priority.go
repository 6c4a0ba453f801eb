package modules

import "sync/atomic"

// lowThread is the OS thread of a load or scan at a low priority
// (backgroundNice, Linux), until it is raised.
type lowThread struct {
	tid    atomic.Int32
	raised atomic.Bool
}
