// Package thinhost carries the part of thinhost's source tree the host's
// programs are compiled from, so that an installed thinhost (go install,
// a copied binary) builds images outside a checkout: the builder writes
// it out into its cache and compiles hostd and u-root's commands there,
// as it does from a checkout's working tree. It lives at the module's
// root because go:embed reaches no parent directory.
package thinhost

import "embed"

// Source holds SourceRoots: go.mod and go.sum (which pin u-root and
// every other dependency, fetched through the module cache) and the
// directories hostd and the image's modprobe are built from, with their
// embedded assets (the host's page). TestSourceCoversHostPrograms keeps
// the list whole as the imports change.
//
//go:embed go.mod go.sum cmd/hostd cmd/modprobe hostd images/layout internal
var Source embed.FS

// SourceRoots are Source's top-level entries, as the go:embed line names
// them; the builder hashes the same files in a checkout.
var SourceRoots = []string{"go.mod", "go.sum", "cmd/hostd", "cmd/modprobe", "hostd", "images/layout", "internal"}
