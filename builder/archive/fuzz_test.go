package archive

import (
	"strings"
	"testing"
)

// FuzzParsePackages: any index text parses without panicking, and every
// package it yields is one valid() accepts.
func FuzzParsePackages(f *testing.F) {
	f.Add("Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/a.deb\nSHA256: " + strings.Repeat("ab", 32) + "\nDepends: b (>= 1) | c\n\n")
	f.Add("Package: ../x\nFilename: pool/../../etc\n")
	f.Add(" continuation first\nPackage:\n\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		ParsePackages(strings.NewReader(s), func(p *Package) error {
			if why := p.valid(); why != "" {
				t.Fatalf("yielded an invalid package (%s): %+v", why, p)
			}
			if strings.Contains(p.DebURL(), "..") {
				t.Fatalf("URL climbs: %s", p.DebURL())
			}
			return nil
		})
	})
}

// FuzzParseRelease: any Release text parses or fails cleanly, and every
// file sum it keeps is 64 hex digits.
func FuzzParseRelease(f *testing.F) {
	f.Add("Suite: bookworm\nDate: Tue, 24 Nov 2026 02:12:15 UTC\nSHA256:\n " + strings.Repeat("a", 64) + " 12 main/binary-amd64/Packages.xz\n")
	f.Add("Codename: x\nSHA256:\n zz 1 a\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelease([]byte(s))
		if err != nil {
			return
		}
		for name, fs := range r.Files {
			if !hexSum.MatchString(fs.SHA256) || fs.Size < 0 {
				t.Fatalf("kept %q with %+v", name, fs)
			}
		}
	})
}

// FuzzEntryPath: no tar entry name maps outside the package root.
func FuzzEntryPath(f *testing.F) {
	for _, s := range []string{"./usr/bin/x", "../x", "./a/../../b", "/etc/passwd", ".", "a//b/./c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := entryPath(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") {
			t.Fatalf("entryPath(%q) = %q", s, p)
		}
		for _, part := range strings.Split(p, "/") {
			if part == ".." || (part == "." && p != ".") || part == "" {
				t.Fatalf("entryPath(%q) = %q", s, p)
			}
		}
	})
}
