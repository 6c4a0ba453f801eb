package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/internal/qmpc"
)

// Screenshot saves what the machine's display shows as a PNG file at path
// (QMP screendump, which QEMU writes as PPM; converted here). Only the
// laptop machine has a display.
func (m *Machine) Screenshot(path string) error {
	if m.Spec.Machine != MachineLaptop {
		return errors.New("screenshot: the virtio machine has no display; use the laptop machine")
	}
	ppm := filepath.Join(m.tmp, "screen.ppm")
	if _, err := qmpc.Run(m.Spec.QMPSocket, "screendump", map[string]any{"filename": ppm}); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	defer os.Remove(ppm)
	f, err := os.Open(ppm)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	defer f.Close()
	img, err := ReadPPM(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write screenshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("write screenshot %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write screenshot %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write screenshot %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write screenshot %s: %w", path, err)
	}
	return nil
}

// maxScreen bounds a PPM's dimensions: a display QEMU emulates is far
// smaller, a larger header is corrupt.
const maxScreen = 8192

// ReadPPM reads a binary PPM (P6, 8 bits per channel), as QEMU's
// screendump writes it.
func ReadPPM(r *bufio.Reader) (*image.RGBA, error) {
	var fields [4]int
	magic, err := ppmToken(r)
	if err != nil || magic != "P6" {
		return nil, fmt.Errorf("read PPM: not a binary PPM (magic %q, %v)", magic, err)
	}
	for i := 1; i < 4; i++ {
		tok, err := ppmToken(r)
		if err != nil {
			return nil, fmt.Errorf("read PPM header: %w", err)
		}
		if _, err := fmt.Sscanf(tok, "%d", &fields[i]); err != nil {
			return nil, fmt.Errorf("read PPM header: %q is not a number", tok)
		}
	}
	w, h, maxval := fields[1], fields[2], fields[3]
	if w <= 0 || h <= 0 || w > maxScreen || h > maxScreen || maxval != 255 {
		return nil, fmt.Errorf("read PPM: unsupported %dx%d, maxval %d", w, h, maxval)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := 0; y < h; y++ {
		if _, err := io.ReadFull(r, row); err != nil {
			return nil, fmt.Errorf("read PPM row %d of %d: %w", y, h, err)
		}
		for x := 0; x < w; x++ {
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = row[3*x], row[3*x+1], row[3*x+2], 0xff
		}
	}
	return img, nil
}

// ppmToken reads one header token, skipping whitespace and comments; it
// consumes the single whitespace byte after it.
func ppmToken(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '#' && b.Len() == 0:
			if _, err := r.ReadString('\n'); err != nil {
				return "", err
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if b.Len() > 0 {
				return b.String(), nil
			}
		default:
			if b.Len() >= 16 {
				return "", errors.New("header token too long")
			}
			b.WriteByte(c)
		}
	}
}

// SendKeys types key combinations on the machine's keyboard (QMP
// send-key), one after the other. A combination is QEMU key codes joined
// by "-", pressed together: "ret", "shift-a", "ctrl-alt-delete".
func (m *Machine) SendKeys(combos ...string) error {
	for _, c := range combos {
		keys, err := ParseKeyCombo(c)
		if err != nil {
			return err
		}
		var arg []map[string]string
		for _, k := range keys {
			arg = append(arg, map[string]string{"type": "qcode", "data": k})
		}
		if _, err := qmpc.Run(m.Spec.QMPSocket, "send-key", map[string]any{"keys": arg, "hold-time": 50}); err != nil {
			return fmt.Errorf("send keys %s: %w", c, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// ParseKeyCombo splits a key combination ("ctrl-alt-delete") into QEMU
// key codes, checking their form (QEMU checks the names).
func ParseKeyCombo(combo string) ([]string, error) {
	keys := strings.Split(combo, "-")
	for _, k := range keys {
		if k == "" || len(k) > 16 || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return nil, fmt.Errorf("key combination %q: %q is not a QEMU key code (such as a, ret, spc, ctrl, alt, delete, f1)", combo, k)
		}
	}
	if len(keys) > 8 {
		return nil, fmt.Errorf("key combination %q: more than 8 keys at once", combo)
	}
	return keys, nil
}

// TextKeys are the key combinations that type s on a US keyboard.
func TextKeys(s string) ([]string, error) {
	var out []string
	for _, r := range s {
		k, ok := textKey(r)
		if !ok {
			return nil, fmt.Errorf("type %q: no US-keyboard key for %q", s, r)
		}
		out = append(out, k)
	}
	return out, nil
}

var shifted = map[rune]string{
	'!': "1", '@': "2", '#': "3", '$': "4", '%': "5", '^': "6", '&': "7", '*': "8", '(': "9", ')': "0",
	'_': "minus", '+': "equal", '{': "bracket_left", '}': "bracket_right", '|': "backslash", ':': "semicolon",
	'"': "apostrophe", '<': "comma", '>': "dot", '?': "slash", '~': "grave_accent",
}

var plain = map[rune]string{
	' ': "spc", '\n': "ret", '\t': "tab", '-': "minus", '=': "equal", '[': "bracket_left", ']': "bracket_right",
	'\\': "backslash", ';': "semicolon", '\'': "apostrophe", ',': "comma", '.': "dot", '/': "slash", '`': "grave_accent",
}

func textKey(r rune) (string, bool) {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return string(r), true
	case r >= 'A' && r <= 'Z':
		return "shift-" + string(r-'A'+'a'), true
	}
	if k, ok := plain[r]; ok {
		return k, true
	}
	if k, ok := shifted[r]; ok {
		return "shift-" + k, true
	}
	return "", false
}
