package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/builder/cache"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/profiles"
)

// WifiFiles are what the host joins Wi-Fi with: wpa_supplicant (see
// hostd/wifi for why not iwd).
var WifiFiles = []HostFile{{Src: "/sbin/wpa_supplicant", Package: "wpasupplicant"}}

// RegulatoryPackage ships the wireless regulatory database.
const RegulatoryPackage = "wireless-regdb"

// UCMPackage ships ALSA's use-case configurations (ucm2): how a laptop's
// sound card is set up where its driver leaves that to user space (Intel's
// SOF and SoundWire codecs: without it their speakers stay silent).
const UCMPackage = "alsa-ucm-conf"

// UCMDir is where UCMPackage puts them.
const UCMDir = layout.ALSAUCMDir

// carriesUCM reports whether the image carries the use-case
// configurations: guests play sound, and the driver set may meet a real
// sound card (not virtio's alone, not none).
func carriesUCM(p *profiles.Profile) bool {
	if hw := p.Host.Kernel.Hardware; hw == "virtio" || hw == "none" {
		return false
	}
	for _, v := range p.VMs {
		if v.Sound {
			return true
		}
	}
	return false
}

// ucmFiles are every file of UCMDir in the locked packages.
func ucmFiles(p *profiles.Profile, hp *hostPackages) ([]HostFile, error) {
	if !carriesUCM(p) {
		return nil, nil
	}
	var out []HostFile
	for _, f := range hp.Tree.Paths(func(path string, _ *archive.Package) bool { return strings.HasPrefix(path, UCMDir+"/") }) {
		// A link to nowhere in the packages would dangle on Debian too.
		if file, err := hp.Tree.Lookup(f); err == nil {
			out = append(out, HostFile{Src: f, Dst: f, Package: file.Package.Name})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sound: %s ships no files under %s in %s", UCMPackage, UCMDir, hp.LockPath)
	}
	return out, nil
}

// BootloaderPackage ships DefaultBootloader.
const BootloaderPackage = "systemd-boot-efi"

// onPanel says whether a guest of p draws on the laptop's panel.
func onPanel(p *profiles.Profile) bool {
	return slices.ContainsFunc(p.VMs, func(v *profiles.VM) bool { return v.Display == "sdl" })
}

// HostFiles are the files of Debian packages the profile's host carries
// in its system image: hostd's tools, and QEMU, OVMF and swtpm for guests
// (SDL for a guest on the panel), Samba for shares.
func HostFiles(p *profiles.Profile) []HostFile {
	files := append([]HostFile(nil), HostTools...)
	if len(p.VMs) > 0 {
		files = append(files, QEMUFiles...)
	}
	if onPanel(p) {
		files = append(files, SDLFiles...)
	}
	for _, v := range p.VMs {
		if v.Sound {
			files = append(files, SoundFiles...)
			break
		}
	}
	if len(p.Shares) > 0 {
		files = append(files, SambaFiles...)
	}
	if p.Storage.Encrypt {
		files = append(files, CryptFiles...)
	}
	if p.Wifi != nil {
		files = append(files, WifiFiles...)
	}
	for _, s := range p.Services {
		files = append(files, HostFile{Src: s.Command[0], Package: s.Package})
	}
	return files
}

// ServiceSpecs are the profile's services as hostd runs them.
func ServiceSpecs(p *profiles.Profile) []config.Service {
	var out []config.Service
	for _, s := range p.Services {
		c := config.Service{Name: s.Name, Program: s.Command[0], Args: s.Command[1:], Restart: s.Restart, ShareUser: s.ShareUser}
		var names []string
		for k := range s.Environment {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			c.Env = append(c.Env, k+"="+s.Environment[k])
		}
		out = append(out, c)
	}
	return out
}

// PackageRequests is every Debian package the host is built from:
// thinhost's own set (the packages of HostFiles, the boot loader's, and
// the kernel unless an artifact gives it), then the profile's extra
// packages. Depends add the rest. An extra package that names one of
// thinhost's own with a suite takes it from there
// ("libgl1-mesa-dri/bookworm-backports": Mesa 25 for a current laptop's
// GPU); naming one package from two suites is an error.
func PackageRequests(p *profiles.Profile) ([]archive.Request, error) {
	at := map[string]int{}
	var out []archive.Request
	add := func(s string) error {
		r, err := archive.ParseRequest(s)
		if err != nil {
			return err
		}
		i, seen := at[r.Name]
		switch {
		case !seen:
			at[r.Name] = len(out)
			out = append(out, r)
		case out[i].Suite == "":
			out[i].Suite = r.Suite
		case r.Suite != "" && r.Suite != out[i].Suite:
			return fmt.Errorf("%s is named twice, from suites %s and %s: name it once", r.Name, out[i].Suite, r.Suite)
		}
		return nil
	}
	var own []string
	for _, f := range HostFiles(p) {
		own = append(own, f.Package)
	}
	if p.Boot.SecureBoot == profiles.SecureBootStock {
		own = append(own, ShimPackage, GRUBPackage)
	} else {
		own = append(own, BootloaderPackage)
	}
	if p.Wifi != nil {
		// The regulatory database, which cfg80211 loads as firmware: the
		// channels and power the country allows.
		own = append(own, RegulatoryPackage)
	}
	if carriesUCM(p) {
		own = append(own, UCMPackage)
	}
	sort.Strings(own)
	if p.Host.Kernel.Artifact == "" {
		own = append(own, p.Packages.Kernel)
	}
	for _, s := range append(own, p.Packages.Extra...) {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("packages: %w", err)
		}
	}
	return out, nil
}

// ArchiveSources are the suites and components the profile names, each at
// its mirror.
func ArchiveSources(p *profiles.Profile) []archive.Source {
	var out []archive.Source
	for _, s := range p.Packages.Suites {
		out = append(out, archive.Source{URL: p.Packages.MirrorFor(s), Suite: s, Components: append([]string(nil), p.Packages.Components...)})
	}
	return out
}

// ArchiveKeys are Debian's archive keys plus the profile's keyrings.
func ArchiveKeys(p *profiles.Profile) (openpgp.EntityList, error) {
	keys, err := archive.DebianKeys()
	if err != nil {
		return nil, err
	}
	for _, k := range p.Packages.Keyrings {
		f, err := os.Open(k)
		if err != nil {
			return nil, fmt.Errorf("read keyring %s (packages block, %s): %w", k, p.Packages.DeclRange, err)
		}
		el, err := openpgp.ReadKeyRing(f)
		if err != nil {
			f.Seek(0, io.SeekStart)
			el, err = openpgp.ReadArmoredKeyRing(f)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read keyring %s (packages block, %s): %w", k, p.Packages.DeclRange, err)
		}
		keys = append(keys, el...)
	}
	return keys, nil
}

// LockPath is the lock file beside a profile: PROFILE.lock without the
// profile's .hcl extension (examples/laptop.hcl -> examples/laptop.lock).
func LockPath(profilePath string) string {
	return strings.TrimSuffix(profilePath, ".hcl") + ".lock"
}

// logAndCache fills in the defaults of a logger and a cache directory
// left empty: a logger that discards, DefaultCacheDir.
func logAndCache(log *slog.Logger, dir string) (*slog.Logger, string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, "", err
		}
	}
	return log, dir, nil
}

// LockConfig is one run of `thinhost lock`.
type LockConfig struct {
	Profile *profiles.Profile
	// LockPath is the lock file; "" uses LockPath(profile).
	LockPath string
	// CacheDir holds the indexes; "" uses DefaultCacheDir.
	CacheDir string
	// Keep prefers the versions of the existing lock file that still
	// satisfy (what a build does when the profile's packages changed);
	// false takes the newest the archive serves.
	Keep     bool
	Log      *slog.Logger
	Progress func(cache.Progress)
}

// LockResult is a written lock file and what changed in it.
type LockResult struct {
	Path    string
	Lock    *archive.Lock
	Changes []archive.Change
}

// Lock resolves the profile's packages against the archive's signed
// indexes and writes the lock file beside the profile.
func Lock(ctx context.Context, cfg LockConfig) (*LockResult, error) {
	p := cfg.Profile
	log, dir, err := logAndCache(cfg.Log, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	reqs, err := PackageRequests(p)
	if err != nil {
		return nil, err
	}
	keys, err := ArchiveKeys(p)
	if err != nil {
		return nil, err
	}
	path := cfg.LockPath
	if path == "" {
		path = LockPath(p.Path)
	}
	old, err := archive.ReadLock(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ix, err := archive.Load(ctx, archive.Config{
		Sources: ArchiveSources(p), Arch: "amd64", Keys: keys,
		Cache: &cache.Cache{Dir: dir, Log: log, Progress: cfg.Progress}, Log: log,
	})
	if err != nil {
		return nil, err
	}
	var prefer map[string]string
	if cfg.Keep && old != nil {
		prefer = old.Versions()
	}
	pkgs, err := ix.Resolve(reqs, prefer)
	if err != nil {
		return nil, fmt.Errorf("resolve the packages of %s: %w", p.Path, err)
	}
	l := archive.NewLock("amd64", ArchiveSources(p), reqs, pkgs)
	if err := archive.WriteLock(path, l); err != nil {
		return nil, err
	}
	return &LockResult{Path: path, Lock: l, Changes: archive.Diff(old, l)}, nil
}

// hostPackages is the packages phase of a build whose profile has a
// packages block: the lock file beside the profile (written on the first
// build, updated keeping its versions when the profile's packages
// changed, never touched offline), every locked .deb fetched (sha256 from
// the lock) and unpacked, as one tree.
type hostPackages struct {
	Tree     *archive.Tree
	Lock     *archive.Lock
	LockPath string
	// LockSHA256 is the lock file's hash, for the manifest.
	LockSHA256 string
	// Unpacked is each package's unpacked tree, by name.
	Unpacked map[string]string
}

func loadHostPackages(ctx context.Context, cfg Config, c *Cache, log *slog.Logger) (*hostPackages, error) {
	p := cfg.Profile
	path := cfg.LockPath
	if path == "" {
		path = LockPath(p.Path)
	}
	l, err := lockFor(ctx, p, path, c, cfg.Offline, log, cfg.Progress)
	if err != nil {
		return nil, err
	}
	dc := *c
	dc.Offline, dc.Log, dc.Progress = cfg.Offline, log, cfg.Progress
	var parts []archive.TreePart
	var size int64
	unpacked := map[string]string{}
	for _, pkg := range l.Packages {
		file, err := archive.FetchDeb(ctx, &dc, pkg)
		if err != nil {
			return nil, fmt.Errorf("packages (%s): %w", path, err)
		}
		u, err := archive.Unpack(ctx, &dc, file, pkg.SHA256)
		if err != nil {
			return nil, fmt.Errorf("packages (%s): %w", path, err)
		}
		parts = append(parts, archive.TreePart{Package: pkg, Dir: u.Dir})
		unpacked[pkg.Name] = u.Dir
		size += pkg.Size
	}
	tree, err := archive.NewTree(parts)
	if err != nil {
		return nil, err
	}
	sum, err := cache.FileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("hash lock file: %w", err)
	}
	log.Info("host packages", "lock", path, "packages", len(l.Packages), "debs_bytes", size)
	return &hostPackages{Tree: tree, Lock: l, LockPath: path, LockSHA256: sum, Unpacked: unpacked}, nil
}

// lockFor is the lock file at path for profile p: read as it is when it
// matches the profile; otherwise (online only) resolved against the
// archive, keeping its versions where they still satisfy, and written.
func lockFor(ctx context.Context, p *profiles.Profile, path string, c *Cache, offline bool, log *slog.Logger, progress func(cache.Progress)) (*archive.Lock, error) {
	reqs, err := PackageRequests(p)
	if err != nil {
		return nil, err
	}
	l, err := archive.ReadLock(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if offline {
			return nil, fmt.Errorf("packages: %s does not exist and --offline forbids resolving the packages: run thinhost lock %s once online", path, p.Path)
		}
		log.Info("no lock file: resolving the host's packages", "lock", path)
	case err != nil:
		return nil, err
	default:
		ok, why := l.Matches("amd64", ArchiveSources(p), reqs)
		if ok {
			return l, nil
		}
		if offline {
			return nil, fmt.Errorf("packages: %s no longer matches the profile (%s) and --offline forbids resolving: run thinhost lock %s online", path, why, p.Path)
		}
		log.Info("lock file out of date: resolving, keeping its versions where they still satisfy", "lock", path, "why", why)
	}
	res, err := Lock(ctx, LockConfig{Profile: p, LockPath: path, CacheDir: c.Dir, Keep: true, Log: log, Progress: progress})
	if err != nil {
		return nil, err
	}
	for _, ch := range res.Changes {
		log.Info("lock file", "change", ch.String())
	}
	return res.Lock, nil
}

// kernelImagePackage is "linux-image-<release>": a package that carries a
// kernel, not a metapackage (linux-image-amd64) that depends on one.
var kernelImagePackage = regexp.MustCompile(`^linux-image-[0-9]`)

// lockedKernelPackage is the package in l whose kernel the host boots:
// packages.kernel itself when it names a kernel's own package, else the
// one linux-image-<release> package its metapackage brought.
func lockedKernelPackage(p *profiles.Profile, l *archive.Lock, lockPath string) (*archive.Package, error) {
	name, _, _ := strings.Cut(p.Packages.Kernel, "/")
	var found []*archive.Package
	for _, pkg := range l.Packages {
		if pkg.Name == name && kernelImagePackage.MatchString(name) {
			return pkg, nil
		}
		if kernelImagePackage.MatchString(pkg.Name) && !strings.HasSuffix(pkg.Name, "-dbg") {
			found = append(found, pkg)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("kernel: %s has no linux-image-<release> package for packages.kernel %q (%s): run thinhost lock %s", lockPath, p.Packages.Kernel, p.Packages.DeclRange, p.Path)
	}
	var names []string
	for _, f := range found {
		names = append(names, f.Name)
	}
	return nil, fmt.Errorf("kernel: %s has %d kernels (%s): name the one to boot in packages.kernel (%s)", lockPath, len(found), strings.Join(names, ", "), p.Packages.DeclRange)
}

// packageKernel is the kernel of a locked linux-image package unpacked
// into dir.
func packageKernel(pkg *archive.Package, dir string) (*Kernel, error) {
	k, err := readUnpacked(dir)
	if err != nil {
		return nil, fmt.Errorf("kernel package %s %s: %w", pkg.Name, pkg.Version, err)
	}
	k.Package = pkg.Name + " " + pkg.Version
	k.SHA256 = pkg.SHA256
	return k, nil
}

// LockedKernelConfig says where LockedKernel finds a profile's kernel.
type LockedKernelConfig struct {
	Profile *profiles.Profile
	// LockPath is the lock file; "" uses LockPath(profile). A missing or
	// outdated lock file is resolved and written, as a build does.
	LockPath string
	// CacheDir is thinhost's cache; "" uses DefaultCacheDir.
	CacheDir string
	Offline  bool
	Log      *slog.Logger
	Progress func(cache.Progress)
}

// LockedKernel is the kernel a build of the profile boots from its
// packages block, fetched and unpacked without the rest of the host's
// packages: for tools that need the host's kernel outside a build (the
// test guest's initramfs carries modules of its release).
func LockedKernel(ctx context.Context, cfg LockedKernelConfig) (*Kernel, error) {
	p := cfg.Profile
	if p.Host.Kernel.Artifact != "" || !p.Packages.Given {
		return nil, fmt.Errorf("%s: the kernel does not come from a packages block", p.Path)
	}
	log, dir, err := logAndCache(cfg.Log, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	path := cfg.LockPath
	if path == "" {
		path = LockPath(p.Path)
	}
	c := &Cache{Dir: dir, Offline: cfg.Offline, Log: log, Progress: cfg.Progress}
	l, err := lockFor(ctx, p, path, c, cfg.Offline, log, cfg.Progress)
	if err != nil {
		return nil, err
	}
	pkg, err := lockedKernelPackage(p, l, path)
	if err != nil {
		return nil, err
	}
	file, err := archive.FetchDeb(ctx, c, pkg)
	if err != nil {
		return nil, fmt.Errorf("kernel (%s): %w", path, err)
	}
	u, err := archive.Unpack(ctx, c, file, pkg.SHA256)
	if err != nil {
		return nil, fmt.Errorf("kernel (%s): %w", path, err)
	}
	return packageKernel(pkg, u.Dir)
}

// serviceNotShipped are the parts of a service's package the host has no
// use for: documentation and packaging metadata.
var serviceNotShipped = []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/", "/usr/share/bug/"}

// serviceFiles are what the system image carries for the profile's
// services: every file of each service's own package but its
// documentation (the data files the program reads: translations,
// templates, plugins), and the paths of its files attribute (a directory:
// every file under it) from any locked package.
func serviceFiles(p *profiles.Profile, hp *hostPackages) ([]HostFile, error) {
	var out []HostFile
	for _, s := range p.Services {
		own := hp.Tree.Paths(func(path string, pkg *archive.Package) bool {
			if pkg.Name != s.Package {
				return false
			}
			for _, skip := range serviceNotShipped {
				if strings.HasPrefix(path, skip) {
					return false
				}
			}
			return true
		})
		if len(own) == 0 {
			return nil, fmt.Errorf("service %q (%s): package %s ships no files in %s", s.Name, s.DeclRange, s.Package, hp.LockPath)
		}
		for _, f := range own {
			// A link that leads nowhere in the packages (to a file of a
			// package not locked) would dangle on Debian too.
			if _, err := hp.Tree.Lookup(f); err == nil {
				out = append(out, HostFile{Src: f, Package: s.Package})
			}
		}
		for _, want := range s.Files {
			if f, err := hp.Tree.Lookup(want); err == nil {
				out = append(out, HostFile{Src: want, Package: f.Package.Name})
				continue
			}
			under := hp.Tree.Paths(func(path string, _ *archive.Package) bool {
				return strings.HasPrefix(path, want+"/")
			})
			if len(under) == 0 {
				return nil, fmt.Errorf("service %q (%s): no locked package ships %s: add the package that does to packages.extra", s.Name, s.DeclRange, want)
			}
			for _, f := range under {
				if file, err := hp.Tree.Lookup(f); err == nil {
					out = append(out, HostFile{Src: f, Package: file.Package.Name})
				}
			}
		}
	}
	return out, nil
}

// systemFilesFromPackages is systemFiles for a build from the archive:
// each of tools looked up in the unpacked packages (never on the build
// machine), with the libraries and loader their ELF headers name; data
// files looked up alike, without libraries; extra
// files (guests' kernels and initrds from artifacts) are taken as they are.
func systemFilesFromPackages(hp *hostPackages, tools, data, extra []HostFile) ([]images.SystemFile, error) {
	byDst := map[string]images.SystemFile{}
	var srcs []string
	for _, t := range tools {
		f, err := hp.Tree.Lookup(t.Src)
		if err != nil && t.Optional && errors.Is(err, archive.ErrNotInTree) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("collect the system image's files: %w; %s should come from package %s: is it in the lock file %s?", err, t.Src, t.Package, hp.LockPath)
		}
		dst := t.Dst
		if dst == "" {
			dst = t.Src
		}
		byDst[dst] = images.SystemFile{Src: f.File, Dst: dst, Package: f.Package.Name, Version: f.Package.Version}
		srcs = append(srcs, t.Src)
	}
	// Data files (firmware) are looked up the same way but need no
	// libraries.
	for _, t := range data {
		f, err := hp.Tree.Lookup(t.Src)
		if err != nil {
			return nil, fmt.Errorf("collect the system image's files: %w", err)
		}
		byDst[t.Dst] = images.SystemFile{Src: f.File, Dst: t.Dst, Package: f.Package.Name, Version: f.Package.Version}
	}
	libs, err := hp.Tree.Libraries(srcs...)
	if err != nil {
		return nil, fmt.Errorf("collect the system image's libraries: %w", err)
	}
	for _, l := range libs {
		if _, ok := byDst[l.Path]; !ok {
			byDst[l.Path] = images.SystemFile{Src: l.File, Dst: l.Path, Package: l.Package.Name, Version: l.Package.Version}
		}
	}
	for _, e := range extra {
		dst := e.Dst
		if dst == "" {
			dst = e.Src
		}
		byDst[dst] = images.SystemFile{Src: e.Src, Dst: dst}
	}
	out := make([]images.SystemFile, 0, len(byDst))
	for _, f := range byDst {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out, nil
}
