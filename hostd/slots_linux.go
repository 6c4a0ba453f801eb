package hostd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/fsutil"
)

// espDir is where hostd mounts the ESP while it reads or changes the
// slots' boot files; it stays unmounted otherwise.
const espDir = "/run/thinhost/esp"

// slots keeps the A/B system slots: which one booted, marking it good
// once the host is ready, their state for the status, and updates into
// the other one.
type slots struct {
	log    *slog.Logger
	booted string

	// espMu is held while the ESP is mounted; mu guards the rest.
	espMu    sync.Mutex
	mu       sync.Mutex
	updating bool
	// isReady is set once the booted slot was judged (ready).
	isReady bool
	state   []api.Slot
	// note says what became of the last update when it rolled back.
	note string
	// stopping ends with the host's shutdown; stop ends it.
	stopping context.Context
	stop     context.CancelFunc
}

func newSlots(log *slog.Logger) *slots {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	stopping, stop := context.WithCancel(context.Background())
	return &slots{log: log, booted: layout.SlotFromCmdline(string(cmdline)), stopping: stopping, stop: stop}
}

// findBooted learns the booted slot from the boot loader when the kernel
// command line does not name it (a unified kernel image's): once the
// modules are loaded (efivarfs may be one), before anything reads it.
func (s *slots) findBooted() {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	s.booted = storage.BootedSlot(string(cmdline), storage.EfivarsDir)
}

// close stops an update under way and waits until the ESP is unmounted:
// the host powers off with its ESP clean. The slot being written was
// taken out of the loader's reach first, so the disk boots the running
// slot again.
func (s *slots) close() {
	s.stop()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if s.espMu.TryLock() {
			s.espMu.Unlock()
			return
		}
	}
	s.log.Warn("an update did not stop within 30s: powering off with the ESP mounted")
}

// withESP runs fn with the boot disk's ESP mounted on espDir, then
// flushes and unmounts it.
func (s *slots) withESP(ctx context.Context, fn func(dir string) error) error {
	s.espMu.Lock()
	defer s.espMu.Unlock()
	if s.stopping.Err() != nil {
		return errors.New("the host is shutting down")
	}
	part, _, err := storage.FindPartition(ctx, layout.ESPName, 5*time.Second)
	if err != nil {
		return fmt.Errorf("find the ESP: %w", err)
	}
	if err := os.MkdirAll(espDir, 0o700); err != nil {
		return err
	}
	dev := "/dev/" + part
	// File names are ASCII: no codepage beyond the one the initramfs
	// carries (nls_iso8859_1; Debian's default utf8 is not there).
	if err := unix.Mount(dev, espDir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "iocharset=iso8859-1,codepage=437"); err != nil {
		return fmt.Errorf("mount the ESP %s: %w", dev, err)
	}
	ferr := fn(espDir)
	unix.Sync()
	if err := unix.Unmount(espDir, 0); err != nil && ferr == nil {
		ferr = fmt.Errorf("unmount the ESP: %w", err)
	}
	return ferr
}

// entryFiles lists thinhost's loader entries in dir (the ESP).
func entryFiles(dir string) map[string]layout.Entry {
	out := map[string]layout.Entry{}
	des, _ := os.ReadDir(filepath.Join(dir, layout.EntryDir))
	for _, de := range des {
		if e, ok := layout.ParseEntryName(de.Name()); ok {
			out[de.Name()] = e
		}
	}
	return out
}

// readLoader says which boot chain the ESP at dir holds.
func readLoader(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, layout.GRUBConfigPath)); err == nil {
		return layout.LoaderGRUB
	}
	for _, s := range layout.Slots {
		if _, err := os.Stat(filepath.Join(dir, layout.UKIPath(s))); err == nil {
			return layout.LoaderUKI
		}
	}
	return layout.LoaderSystemdBoot
}

// ready marks the booted slot good (its loader entry loses its boot
// counter, so the loader keeps booting it) and reads the slots' state.
// A slot is good once the host is ready with its system image and data
// partition mounted; guests and services do not decide it.
func (s *slots) ready(ctx context.Context, good bool) {
	var state []api.Slot
	err := s.withESP(ctx, func(dir string) error {
		loader := readLoader(dir)
		defer func() { state = readSlots(dir, s.booted, loader) }()
		if !good {
			return nil
		}
		if loader == layout.LoaderGRUB {
			return markGoodGRUB(s.log, dir, s.booted)
		}
		return markGood(s.log, dir, s.booted)
	})
	if err != nil {
		s.log.Warn("A/B slots", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.isReady = state, true
	for _, sl := range state {
		if sl.State == "failed" && !sl.Booted {
			s.note = fmt.Sprintf("the update in slot %s (build %s) did not reach ready in its boots: slot %s, the one before it, runs", sl.Name, sl.Build, s.booted)
			s.log.Warn("update rolled back", "failed_slot", sl.Name, "build", sl.Build, "running", s.booted)
		}
	}
}

// markGood takes the boot counter off slot's loader entry on the ESP at
// dir: systemd-boot keeps booting it.
func markGood(log *slog.Logger, dir, slot string) error {
	for name, e := range entryFiles(dir) {
		if e.Slot != slot || !e.Counting {
			continue
		}
		final := filepath.Join(dir, layout.EntryDir, layout.EntryName(slot, -1))
		if err := os.Rename(filepath.Join(dir, layout.EntryDir, name), final); err != nil {
			return fmt.Errorf("mark slot %s good: %w", slot, err)
		}
		fsutil.SyncDir(filepath.Dir(final))
		log.Info("slot marked good", "slot", slot, "entry", filepath.Base(final), "tries_done", e.TriesDone)
	}
	return nil
}

// markGoodGRUB makes slot, on trial and booted to ready, the GRUB
// configuration's default, then ends its trial.
func markGoodGRUB(log *slog.Logger, dir, slot string) error {
	env := readGRUBEnv(dir)
	if env[layout.GRUBTry] != slot {
		return nil
	}
	if err := writeGRUB(dir, slot, ""); err != nil {
		return fmt.Errorf("mark slot %s good: %w", slot, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, layout.GRUBEnvPath), layout.GRUBEnv(nil)); err != nil {
		return fmt.Errorf("mark slot %s good: %w", slot, err)
	}
	log.Info("slot marked good", "slot", slot, "loader", "grub", "tries_left", env[layout.GRUBTries])
	return nil
}

// readSlots is the slots' state from the ESP at dir.
func readSlots(dir, booted, loader string) []api.Slot {
	if loader == layout.LoaderGRUB {
		return readGRUBSlots(dir, booted)
	}
	entries := entryFiles(dir)
	var out []api.Slot
	for _, name := range layout.Slots {
		sl := slotWithInfo(dir, name, booted)
		for file, e := range entries {
			if e.Slot != name {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(dir, layout.EntryDir, file)); err == nil {
				sl.Version = layout.EntryVersion(string(b))
			}
			switch {
			case !e.Counting:
				sl.State = "good"
			case e.TriesLeft == 0:
				sl.State = "failed"
			default:
				sl.State, sl.TriesLeft = "trying", e.TriesLeft
			}
		}
		out = append(out, sl)
	}
	return out
}

// slotWithInfo is a slot as its slot.json on the ESP at dir describes it,
// "empty" until its entry says more.
func slotWithInfo(dir, name, booted string) api.Slot {
	sl := api.Slot{Name: name, Booted: name == booted, State: "empty"}
	if info, ok := readSlotInfo(dir, name); ok {
		sl.Build, sl.Profile = info.Build, info.Profile
	}
	return sl
}

func readSlotInfo(dir, slot string) (layout.SlotInfo, bool) {
	var info layout.SlotInfo
	b, err := os.ReadFile(filepath.Join(dir, layout.SlotInfoPath(slot)))
	return info, err == nil && json.Unmarshal(b, &info) == nil
}

// GRUB's state: the good slot is the one grub.cfg defaults to; the
// environment block names a slot on trial and its boots left.

// grubGood is the slot the GRUB configuration on the ESP at dir defaults
// to ("set thinhost_slot=X").
func grubGood(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, layout.GRUBConfigPath))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "set thinhost_slot="); ok && layout.ValidSlot(v) {
			return v
		}
	}
	return "a"
}

func readGRUBEnv(dir string) map[string]string {
	b, _ := os.ReadFile(filepath.Join(dir, layout.GRUBEnvPath))
	vars, _ := layout.ParseGRUBEnv(b)
	if vars == nil {
		vars = map[string]string{}
	}
	return vars
}

func readGRUBSlots(dir, booted string) []api.Slot {
	good := grubGood(dir)
	env := readGRUBEnv(dir)
	tries, err := strconv.Atoi(env[layout.GRUBTries])
	var out []api.Slot
	for _, name := range layout.Slots {
		sl := slotWithInfo(dir, name, booted)
		if _, ok := readSlotInfo(dir, name); ok {
			switch {
			case name == env[layout.GRUBTry] && name != good && err == nil && tries == 0 && !sl.Booted:
				sl.State = "failed"
			case name == env[layout.GRUBTry] && name != good && err == nil:
				sl.State, sl.TriesLeft = "trying", tries
			default:
				sl.State = "good"
			}
		}
		out = append(out, sl)
	}
	return out
}

// writeGRUB writes the GRUB configuration for the slots that hold
// something (slot.json), minus skip, defaulting to good.
func writeGRUB(dir, good, skip string) error {
	infos := map[string]layout.SlotInfo{}
	for _, slot := range layout.Slots {
		if info, ok := readSlotInfo(dir, slot); ok && slot != skip {
			infos[slot] = info
		}
	}
	if _, ok := infos[good]; !ok {
		return refused("slot %s has no %s: this disk was written before A/B updates; reflash it with thinhost flash --keep-data", good, layout.SlotInfoPath(good))
	}
	return writeFileAtomic(filepath.Join(dir, layout.GRUBConfigPath), []byte(layout.GRUBConfig(good, infos)))
}

// status is the slots' state and the last update's note.
func (s *slots) status() ([]api.Slot, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.Slot(nil), s.state...), s.note
}

// refused wraps an update's refusal.
func refused(format string, a ...any) error {
	return fmt.Errorf("%w: %s", api.ErrUpdateRefused, fmt.Sprintf(format, a...))
}

// update writes the update stream r into the slot that is not running:
// first its loader entry goes (the loader cannot boot a slot half
// written), then the system image into its partition and the boot files
// onto the ESP, each checked against the manifest's SHA-256 and read back,
// and last a new entry whose version is above every other's, with tries
// boots to reach ready. The running slot and the data partition are never
// written.
func (s *slots) update(ctx context.Context, r io.Reader, tries int) (*api.UpdateResult, error) {
	s.mu.Lock()
	if !s.isReady {
		s.mu.Unlock()
		return nil, refused("the host is still coming up: send the update once it is ready (the running slot must be judged first)")
	}
	if s.updating {
		s.mu.Unlock()
		return nil, api.ErrBusy
	}
	s.updating = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.updating = false
		s.mu.Unlock()
	}()

	// A shutdown ends the update as a client that went away does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopping, cancel)()
	tr := tar.NewReader(&ctxReader{ctx: ctx, r: r})
	hdr, err := tr.Next()
	if err != nil || hdr.Name != api.UpdateManifestName || hdr.Size > 64<<10 {
		return nil, refused("the update stream must start with %s", api.UpdateManifestName)
	}
	var m api.UpdateManifest
	if err := json.NewDecoder(io.LimitReader(tr, 64<<10)).Decode(&m); err != nil {
		return nil, refused("read %s: %v", api.UpdateManifestName, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrUpdateRefused, err)
	}
	target := layout.OtherSlot(s.booted)
	sysPart, _, err := storage.FindPartition(ctx, layout.SystemName(target), time.Second)
	if err != nil {
		return nil, refused("this disk has no slot %s: %v; reflash it with thinhost flash --keep-data", target, err)
	}
	sysDev := "/dev/" + sysPart
	room, err := blockSize(sysPart)
	if err != nil {
		return nil, err
	}

	var res *api.UpdateResult
	var state []api.Slot
	err = s.withESP(ctx, func(esp string) error {
		loader := readLoader(esp)
		// Whatever happens, the status shows the slots as they are now.
		defer func() { state = readSlots(esp, s.booted, loader) }()
		var err error
		res, err = applyUpdate(ctx, s.log, esp, sysDev, room, target, tr, &m, tries, storage.EfivarsDir)
		return err
	})
	if state != nil {
		s.mu.Lock()
		s.state = state
		if err == nil {
			s.note = ""
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.log.Warn("update failed", "slot", target, "err", err)
		return nil, err
	}
	s.log.Info("update: slot written; it boots next", "slot", target, "build", res.Build, "tries", tries, "version", res.Version)
	return res, nil
}

// applyUpdate writes the update whose manifest m was read from tr into
// slot target: its system image into sysDev (room bytes long), its boot
// files into the ESP mounted at esp. See slots.update.
func applyUpdate(ctx context.Context, log *slog.Logger, esp, sysDev string, room int64, target string, tr *tar.Reader, m *api.UpdateManifest, tries int, efivars string) (*api.UpdateResult, error) {
	for _, f := range m.Files {
		if f.Name == api.UpdateSystem && f.Size > room {
			return nil, refused("the new system image (%d MiB) does not fit slot %s's partition (%d MiB): the new image's layout differs from this disk's; reflash with thinhost flash --keep-data",
				f.Size>>20, target, room>>20)
		}
	}
	loader := readLoader(esp)
	if m.Info.Loader != loader {
		return nil, refused("the new image boots through %s, this disk through %s: reflash with thinhost flash --keep-data", m.Info.Loader, loader)
	}
	if err := checkESPRoom(esp, target, m.Files); err != nil {
		return nil, err
	}
	// The target slot's entry first: from here on the loader cannot
	// pick the slot until its new entry is written, last.
	good := layout.OtherSlot(target)
	if loader == layout.LoaderGRUB {
		if err := writeGRUB(esp, good, target); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(esp, layout.GRUBEnvPath), layout.GRUBEnv(nil)); err != nil {
			return nil, err
		}
	}
	version := 0
	for name, e := range entryFiles(esp) {
		p := filepath.Join(esp, layout.EntryDir, name)
		if e.Slot == target {
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("remove slot %s's old entry: %w", target, err)
			}
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			version = max(version, layout.EntryVersion(string(b)))
		}
	}
	_ = os.Remove(filepath.Join(esp, layout.SlotInfoPath(target)))
	fsutil.SyncDir(filepath.Join(esp, layout.EntryDir))
	if err := os.MkdirAll(filepath.Join(esp, "thinhost", target), 0o755); err != nil {
		return nil, err
	}
	log.Info("update: writing slot", "slot", target, "build", m.Info.Build, "tries", tries)
	for _, f := range m.Files {
		hdr, err := tr.Next()
		if err != nil {
			return nil, refused("the stream ended before %s: %v", f.Name, err)
		}
		if hdr.Name != f.Name || hdr.Size != f.Size {
			return nil, refused("the stream holds %s (%d bytes) where the manifest says %s (%d bytes)", hdr.Name, hdr.Size, f.Name, f.Size)
		}
		dst := sysDev
		if f.Name == api.UpdateSystem {
			err = writeDevice(ctx, sysDev, tr, f)
		} else {
			dst = filepath.Join(esp, slotFile(target, f.Name))
			err = writeFileChecked(dst, &ctxReader{ctx: ctx, r: tr}, f)
		}
		if err != nil {
			return nil, err
		}
		log.Info("update: written", "file", f.Name, "to", dst, "bytes", f.Size)
		if f.Name == api.UpdateUKI {
			// Before the slot gets an entry: what the firmware would
			// refuse is refused here, and the API token alone does not
			// install a host under Secure Boot.
			if err := storage.CheckSignedImage(efivars, dst); err != nil {
				return nil, refused("%v", err)
			}
		}
	}
	info, _ := json.MarshalIndent(m.Info, "", "  ")
	if err := writeFileAtomic(filepath.Join(esp, layout.SlotInfoPath(target)), append(info, '\n')); err != nil {
		return nil, err
	}
	if loader == layout.LoaderGRUB {
		// The slot's menu entry, then the trial that picks it.
		if err := writeGRUB(esp, good, ""); err != nil {
			return nil, err
		}
		env := layout.GRUBEnv(map[string]string{layout.GRUBTry: target, layout.GRUBTries: strconv.Itoa(tries)})
		if err := writeFileAtomic(filepath.Join(esp, layout.GRUBEnvPath), env); err != nil {
			return nil, err
		}
		return &api.UpdateResult{Slot: target, Build: m.Info.Build, Tries: tries}, nil
	}
	if err := writeFileAtomic(filepath.Join(esp, layout.LoaderConfPath), []byte(layout.LoaderConfFor(loader))); err != nil {
		return nil, err
	}
	version++
	entry := filepath.Join(esp, layout.EntryDir, layout.EntryName(target, tries))
	if err := writeFileAtomic(entry, []byte(layout.SystemdBootEntry(target, m.Info, version))); err != nil {
		return nil, err
	}
	return &api.UpdateResult{Slot: target, Build: m.Info.Build, Tries: tries, Version: version}, nil
}

// slotFile is where an update's boot file goes on the ESP.
func slotFile(slot, name string) string {
	switch name {
	case api.UpdateKernel:
		return layout.KernelPath(slot)
	case api.UpdateInitrd:
		return layout.InitrdPath(slot)
	case api.UpdateUKI:
		return layout.UKIPath(slot)
	default:
		return layout.MicrocodePath(slot)
	}
}

// checkESPRoom refuses an update whose boot files do not fit on the ESP
// beside everything but the target slot's old ones.
func checkESPRoom(esp, target string, files []api.UpdateFile) error {
	var st unix.Statfs_t
	if err := unix.Statfs(esp, &st); err != nil {
		return fmt.Errorf("statfs the ESP: %w", err)
	}
	free := int64(st.Bavail) * st.Bsize
	var need int64
	for _, f := range files {
		if f.Name == api.UpdateSystem {
			continue
		}
		need += f.Size + st.Bsize
		if fi, err := os.Stat(filepath.Join(esp, slotFile(target, f.Name))); err == nil {
			free += fi.Size()
		}
	}
	if need > free {
		return refused("the new boot files (%d MiB) do not fit on the ESP (%d MiB free for them): the new image's kernel and initramfs are larger than this disk's ESP takes; reflash with thinhost flash --keep-data", need>>20, free>>20)
	}
	return nil
}

// blockSize is a block device's size in bytes, from sysfs.
func blockSize(name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", name, "size"))
	if err != nil {
		return 0, fmt.Errorf("read the size of %s: %w", name, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the size of %s: %w", name, err)
	}
	return n * 512, nil
}

// writeDevice writes f's bytes from r to the start of the device dev,
// syncs, and reads them back: both the stream and the device must hash to
// the manifest's SHA-256.
func writeDevice(ctx context.Context, dev string, r io.Reader, f api.UpdateFile) error {
	out, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	h := sha256.New()
	_, err = io.CopyN(out, io.TeeReader(&ctxReader{ctx: ctx, r: r}, h), f.Size)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s to %s: %w", f.Name, dev, err)
	}
	if err := hashIs(h, f, "as sent"); err != nil {
		return err
	}
	return readBack(dev, f)
}

// writeFileChecked writes f's bytes from r to path (through a temporary
// name), synced and read back against the manifest's SHA-256 before it
// takes path's place.
func writeFileChecked(path string, r io.Reader, f api.UpdateFile) error {
	h := sha256.New()
	err := fsutil.WriteFile(path, io.TeeReader(io.LimitReader(r, f.Size), h), 0o644, func(tmp string) error {
		if fi, err := os.Stat(tmp); err != nil || fi.Size() != f.Size {
			return fmt.Errorf("%s: the stream ended early", f.Name)
		}
		if err := hashIs(h, f, "as sent"); err != nil {
			return err
		}
		return readBack(tmp, f)
	})
	if err != nil && !errors.Is(err, api.ErrUpdateRefused) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return err
}

func hashIs(h hash.Hash, f api.UpdateFile, when string) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return refused("%s %s has SHA-256 %s, the manifest says %s", f.Name, when, got, f.SHA256)
	}
	return nil
}

// readBack hashes the first f.Size bytes of path (a file or a device)
// against the manifest: what was written is what reads back.
func readBack(path string, f api.UpdateFile) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	defer in.Close()
	// Past the page cache: what the medium holds.
	_ = unix.Fadvise(int(in.Fd()), 0, 0, unix.FADV_DONTNEED)
	h := sha256.New()
	if _, err := io.CopyN(h, in, f.Size); err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s reads back from %s with SHA-256 %s, not the %s written: the medium may be failing", f.Name, path, got, f.SHA256)
	}
	return nil
}

// writeFileAtomic replaces path with data, through a synced temporary
// file.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFile(path, bytes.NewReader(data), 0o644, nil); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ctxReader stops a copy when ctx ends (the client went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
