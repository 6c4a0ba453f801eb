package api

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/images/layout"
)

// PUT /v1/update?tries=N takes a newly built image's slot as a tar
// stream: UpdateManifestName first, then each of its Files in its order.
// hostd writes them into the slot that is not running and gives its loader
// entry N boots (layout.DefaultTries when absent) to reach ready.

// UpdateManifestName is the update stream's first member.
const UpdateManifestName = "manifest.json"

// The files of an update, by name in the stream.
const (
	UpdateSystem    = layout.UpdateSystem
	UpdateKernel    = layout.UpdateKernel
	UpdateInitrd    = layout.UpdateInitrd
	UpdateMicrocode = layout.UpdateMicrocode
	UpdateUKI       = layout.UpdateUKI
)

// MaxTries bounds an update's boot count.
const MaxTries = layout.MaxGRUBTries

// UpdateManifest describes an update: the new slot's description (from
// the image's ESP) and the files that follow it.
type UpdateManifest struct {
	Info  layout.SlotInfo `json:"info"`
	Files []UpdateFile    `json:"files"`
}

// UpdateFile is one file of an update.
type UpdateFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Check refuses a manifest hostd cannot take: unknown or repeated files,
// a missing system image, kernel or initramfs, a microcode file the slot
// does not announce (or the other way round), bad sizes or hashes.
func (m *UpdateManifest) Check() error {
	seen := map[string]bool{}
	for _, f := range m.Files {
		switch f.Name {
		case UpdateSystem, UpdateKernel, UpdateInitrd, UpdateMicrocode, UpdateUKI:
		default:
			return fmt.Errorf("update: unknown file %q", f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("update: %s twice", f.Name)
		}
		seen[f.Name] = true
		if f.Size <= 0 || f.Size > 64<<30 {
			return fmt.Errorf("update: %s has size %d", f.Name, f.Size)
		}
		if !sha256RE.MatchString(f.SHA256) {
			return fmt.Errorf("update: %s has no SHA-256 (lower-case hex)", f.Name)
		}
	}
	if m.Info.Loader != layout.LoaderSystemdBoot && m.Info.Loader != layout.LoaderGRUB && m.Info.Loader != layout.LoaderUKI {
		return fmt.Errorf("update: unknown boot chain %q", m.Info.Loader)
	}
	if m.Info.Loader == layout.LoaderUKI && m.Info.Microcode {
		return fmt.Errorf("update: a unified kernel image carries its microcode inside")
	}
	// The system image and exactly the boot files of the slot's chain.
	want := map[string]bool{UpdateSystem: true}
	for _, f := range layout.UpdateBootFiles(m.Info, "a") {
		want[f[0]] = true
	}
	for name := range want {
		if !seen[name] {
			return fmt.Errorf("update: no %s", name)
		}
	}
	for name := range seen {
		if !want[name] {
			return fmt.Errorf("update: %s does not belong to a %s slot (microcode: %v)", name, m.Info.Loader, m.Info.Microcode)
		}
	}
	// These go into loader entries, one per line: a control character
	// (a newline) would add lines of its own.
	for field, v := range map[string]string{"title": m.Info.Title, "cmdline": m.Info.Cmdline, "build": m.Info.Build, "profile": m.Info.Profile} {
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("update: the slot's %s holds a control character: %q", field, v)
		}
	}
	return nil
}

// UpdateResult is what an update did.
type UpdateResult struct {
	// Slot was written; it boots next, with Tries boots to reach ready.
	Slot  string `json:"slot"`
	Build string `json:"build"`
	Tries int    `json:"tries"`
	// Version orders the slot's loader entry above the running one's.
	Version int `json:"version"`
}

// Slot is one A/B system slot's state (Status.Slots).
type Slot struct {
	Name   string `json:"name"`
	Booted bool   `json:"booted"`
	// State is "good" (booted to ready), "trying" (an update with
	// TriesLeft boots left), "failed" (an update that used its boots
	// without reaching ready: the loader skips it), or "empty".
	State     string `json:"state"`
	TriesLeft int    `json:"tries_left,omitempty"`
	Version   int    `json:"version,omitempty"`
	Build     string `json:"build,omitempty"`
	Profile   string `json:"profile,omitempty"`
}

// WriteUpdate writes the update stream: the manifest, then each file's
// bytes from open (in the manifest's order).
func WriteUpdate(w io.Writer, m *UpdateManifest, open func(name string) (io.ReadCloser, error)) error {
	tw := tar.NewWriter(w)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: UpdateManifestName, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	for _, f := range m.Files {
		r, err := open(f.Name)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: f.Size, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyN(tw, r, f.Size)
		}
		r.Close()
		if err != nil {
			return fmt.Errorf("send %s: %w", f.Name, err)
		}
	}
	return tw.Close()
}

// Update sends an update (see WriteUpdate) with the given boot count and
// returns what hostd did. body is the stream WriteUpdate writes.
func (c *Client) Update(ctx context.Context, body io.Reader, tries int) (*UpdateResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/v1/update?tries="+strconv.Itoa(tries), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res UpdateResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("read the update's result: %w", err)
	}
	return &res, nil
}
