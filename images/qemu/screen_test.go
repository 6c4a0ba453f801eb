package qemu

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestReadPPM(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("P6\n# QEMU\n2 1\n255\n")
	b.Write([]byte{255, 0, 0, 0, 0, 255})
	img, err := ReadPPM(bufio.NewReader(&b))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, bl, _ := img.At(0, 0).RGBA(); r>>8 != 255 || g != 0 || bl != 0 {
		t.Errorf("pixel 0 = %d %d %d, want red", r>>8, g>>8, bl>>8)
	}
	if r, g, bl, _ := img.At(1, 0).RGBA(); r != 0 || g != 0 || bl>>8 != 255 {
		t.Errorf("pixel 1 = %d %d %d, want blue", r>>8, g>>8, bl>>8)
	}
	for _, bad := range []string{"P3\n1 1\n255\n", "P6\n0 1\n255\n", "P6\n99999 1\n255\n", "P6\n1 1\n65535\n", "P6\n2 2\n255\nabc", "P6 1"} {
		if _, err := ReadPPM(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("ReadPPM(%q) accepted a bad file", bad)
		}
	}
}

func FuzzReadPPM(f *testing.F) {
	f.Add([]byte("P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadPPM(bufio.NewReader(bytes.NewReader(b)))
	})
}

func TestKeys(t *testing.T) {
	got, err := TextKeys("Hi, /x\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shift-h", "i", "comma", "spc", "slash", "x", "ret"}
	if !slices.Equal(got, want) {
		t.Errorf("TextKeys = %v, want %v", got, want)
	}
	if _, err := TextKeys("é"); err == nil {
		t.Error("a character without a US key was accepted")
	}
	if k, err := ParseKeyCombo("ctrl-alt-delete"); err != nil || !slices.Equal(k, []string{"ctrl", "alt", "delete"}) {
		t.Errorf("ParseKeyCombo = %v, %v", k, err)
	}
	for _, bad := range []string{"", "ctrl--x", "Ctrl", `a"b`, "a-b-c-d-e-f-g-h-i"} {
		if _, err := ParseKeyCombo(bad); err == nil {
			t.Errorf("ParseKeyCombo(%q) accepted it", bad)
		}
	}
}
