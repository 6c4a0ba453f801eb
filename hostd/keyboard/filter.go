// Package keyboard holds the laptop's keyboard while a guest has the
// panel: hostd reads every keyboard exclusively and passes its keys on to
// one virtual keyboard, which QEMU (through SDL) and the host's key
// watchers read. Between the two sits the host key combination
// (Ctrl+Alt+Shift+F12), which the guest never sees: it turns the
// keyboard to the host's console and back.
//
// The key logic (Filter, Translate) is plain code; the devices
// (evdev, uinput) are Linux's.
package keyboard

import "slices"

// Key codes (linux/input-event-codes.h) the filter and the keymap name.
const (
	KeyEsc        = 1
	KeyBackspace  = 14
	KeyTab        = 15
	KeyEnter      = 28
	KeyLeftCtrl   = 29
	KeyLeftShift  = 42
	KeyRightShift = 54
	KeyLeftAlt    = 56
	KeySpace      = 57
	KeyCapsLock   = 58
	KeyF12        = 88
	KeyKPEnter    = 96
	KeyRightCtrl  = 97
	KeyRightAlt   = 100
	KeyA          = 30
	KeyZ          = 44
)

// Combo names the host key combination, for people.
const Combo = "Ctrl+Alt+Shift+F12"

// Key is one key event: the key's code and its value (1 pressed, 0
// released, 2 held down: the keyboard's autorepeat).
type Key struct {
	Code  uint16
	Value int32
}

// Target is who the keys go to.
type Target int

const (
	// Guest: the keys go on to the virtual keyboard the guest reads.
	Guest Target = iota
	// Host: the keys go to the host's console.
	Host
)

// Out is what one key event comes to.
type Out struct {
	// Guest are the events for the guest's keyboard.
	Guest []Key
	// Host is the event for the host's console (Target Host), if any.
	Host *Key
	// Combo is set when the host key combination was pressed: its last
	// key is swallowed, and the caller decides (Switch) whether the
	// keyboard changes hands.
	Combo bool
}

// Filter decides, key by key, where a keyboard's events go. It keeps
// the guest's view consistent: the guest sees a release for each press
// it saw, never a release (or a repeat) of a key pressed for the host,
// and its held keys are released when the host takes the keyboard.
// The zero Filter sends keys to the guest.
type Filter struct {
	target Target
	// down are the keys held down now; guest those the guest saw go
	// down and not yet up.
	down, guest map[uint16]bool
	// combo is set from the combination's F12 press to its release.
	combo bool
}

// Target says where keys go now.
func (f *Filter) Target() Target { return f.target }

// Held reports whether key code is held down.
func (f *Filter) Held(code uint16) bool { return f.down[code] }

func (f *Filter) modsHeld() bool {
	return (f.down[KeyLeftCtrl] || f.down[KeyRightCtrl]) && (f.down[KeyLeftAlt] || f.down[KeyRightAlt]) &&
		(f.down[KeyLeftShift] || f.down[KeyRightShift])
}

// Feed takes one key event.
func (f *Filter) Feed(k Key) Out {
	if f.down == nil {
		f.down, f.guest = map[uint16]bool{}, map[uint16]bool{}
	}
	switch k.Value {
	case 0:
		delete(f.down, k.Code)
	case 1:
		f.down[k.Code] = true
	}
	if k.Code == KeyF12 {
		if k.Value == 1 && f.modsHeld() {
			f.combo = true
			return Out{Combo: true}
		}
		if f.combo {
			// The combination's own F12: its repeats and release.
			if k.Value == 0 {
				f.combo = false
			}
			return Out{}
		}
	}
	if f.target == Host {
		return Out{Host: &k}
	}
	switch {
	case k.Value == 0 && !f.guest[k.Code], k.Value == 2 && !f.guest[k.Code]:
		// Pressed for the host, or before the guest had the keyboard.
		return Out{}
	case k.Value == 0:
		delete(f.guest, k.Code)
	default:
		f.guest[k.Code] = true
	}
	return Out{Guest: []Key{k}}
}

// Switch gives the keyboard to t. It returns the releases the guest
// needs when it loses the keyboard: each key it saw go down (the
// combination's Ctrl, Alt and Shift among them), so nothing stays held
// in the guest while the host has the keys.
func (f *Filter) Switch(t Target) []Key {
	var up []Key
	if t == Host && f.target == Guest {
		for c := range f.guest {
			up = append(up, Key{Code: c, Value: 0})
		}
		slices.SortFunc(up, func(a, b Key) int { return int(a.Code) - int(b.Code) })
		clear(f.guest)
	}
	f.target = t
	return up
}
