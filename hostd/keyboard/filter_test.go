package keyboard

import (
	"reflect"
	"testing"
)

func press(c uint16) Key   { return Key{Code: c, Value: 1} }
func release(c uint16) Key { return Key{Code: c, Value: 0} }
func repeat(c uint16) Key  { return Key{Code: c, Value: 2} }

func TestFilterPassesKeysToTheGuest(t *testing.T) {
	var f Filter
	for _, k := range []Key{press(KeyA), repeat(KeyA), release(KeyA), press(KeyEnter), release(KeyEnter)} {
		out := f.Feed(k)
		if !reflect.DeepEqual(out.Guest, []Key{k}) || out.Host != nil || out.Combo {
			t.Errorf("Feed(%v) = %+v, want it passed to the guest", k, out)
		}
	}
}

// The combination: its F12 never reaches the guest; the guest's held
// modifiers are released when the host takes the keys; keys typed for
// the host never reach the guest, nor do the releases of keys pressed
// for the host once the guest has the keys again.
func TestFilterCombo(t *testing.T) {
	var f Filter
	var toGuest []Key
	feed := func(k Key) Out {
		out := f.Feed(k)
		toGuest = append(toGuest, out.Guest...)
		return out
	}
	for _, c := range []uint16{KeyLeftCtrl, KeyLeftAlt, KeyRightShift} {
		feed(press(c))
	}
	out := feed(press(KeyF12))
	if !out.Combo || len(out.Guest) != 0 {
		t.Fatalf("F12 with Ctrl+Alt+Shift: %+v, want the combination, nothing for the guest", out)
	}
	toGuest = append(toGuest, f.Switch(Host)...)
	want := []Key{press(KeyLeftCtrl), press(KeyLeftAlt), press(KeyRightShift), release(KeyLeftCtrl), release(KeyRightShift), release(KeyLeftAlt)}
	// The releases come sorted by code: Ctrl 29, Shift 54, Alt 56.
	if !reflect.DeepEqual(toGuest, want) {
		t.Errorf("the guest saw %v, want %v", toGuest, want)
	}
	feed(repeat(KeyF12))
	feed(release(KeyF12))
	feed(release(KeyLeftCtrl))
	feed(release(KeyLeftAlt))
	feed(release(KeyRightShift))
	if out := feed(press(KeyA)); out.Host == nil || *out.Host != press(KeyA) {
		t.Errorf("a key on the host's console: %+v", out)
	}
	feed(press(KeyEnter))
	// Back: Enter, held down since the host had the keys, is the host's.
	for _, c := range []uint16{KeyRightCtrl, KeyRightAlt, KeyLeftShift} {
		feed(press(c))
	}
	if out := feed(press(KeyF12)); !out.Combo {
		t.Fatalf("the combination again: %+v", out)
	}
	if up := f.Switch(Guest); len(up) != 0 {
		t.Errorf("switching to the guest released %v", up)
	}
	n := len(toGuest)
	for _, k := range []Key{release(KeyF12), repeat(KeyEnter), release(KeyEnter), release(KeyRightCtrl), release(KeyRightAlt), release(KeyLeftShift), release(KeyA)} {
		feed(k)
	}
	if len(toGuest) != n {
		t.Errorf("the guest saw keys pressed for the host: %v", toGuest[n:])
	}
	if out := feed(press(KeyZ)); !reflect.DeepEqual(out.Guest, []Key{press(KeyZ)}) {
		t.Errorf("after the combination, a key for the guest: %+v", out)
	}
}

// F12 alone, or with fewer modifiers, is the guest's.
func TestFilterF12IsTheGuests(t *testing.T) {
	var f Filter
	f.Feed(press(KeyLeftCtrl))
	f.Feed(press(KeyLeftAlt))
	if out := f.Feed(press(KeyF12)); out.Combo || len(out.Guest) != 1 {
		t.Errorf("Ctrl+Alt+F12: %+v, want it passed to the guest", out)
	}
	if out := f.Feed(release(KeyF12)); len(out.Guest) != 1 {
		t.Errorf("its release: %+v", out)
	}
}

// A combination the caller refuses (no shell on the panel) leaves the
// keys with the guest, F12 still swallowed.
func TestFilterComboRefused(t *testing.T) {
	var f Filter
	for _, c := range []uint16{KeyLeftCtrl, KeyLeftAlt, KeyLeftShift} {
		f.Feed(press(c))
	}
	if !f.Feed(press(KeyF12)).Combo {
		t.Fatal("no combination")
	}
	if out := f.Feed(release(KeyF12)); len(out.Guest) != 0 {
		t.Errorf("the combination's F12 reached the guest: %+v", out)
	}
	if out := f.Feed(release(KeyLeftShift)); len(out.Guest) != 1 {
		t.Errorf("Shift's release, seen pressed by the guest: %+v", out)
	}
}

func TestTranslate(t *testing.T) {
	for _, c := range []struct {
		code uint16
		m    Mods
		want string
	}{
		{KeyA, Mods{}, "a"},
		{KeyA, Mods{Shift: true}, "A"},
		{KeyA, Mods{CapsLock: true}, "A"},
		{KeyA, Mods{CapsLock: true, Shift: true}, "a"},
		{3, Mods{CapsLock: true}, "2"},
		{3, Mods{Shift: true}, "@"},
		{46, Mods{Ctrl: true}, "\x03"},
		{32, Mods{Ctrl: true, Shift: true}, "\x04"},
		{26, Mods{Ctrl: true}, "\x1b"},
		{KeySpace, Mods{Ctrl: true}, "\x00"},
		{KeyEnter, Mods{}, "\r"},
		{KeyBackspace, Mods{}, "\x7f"},
		{103, Mods{}, "\x1b[A"},
		{38, Mods{Alt: true}, "\x1bl"},
		{KeyLeftShift, Mods{}, ""},
		{KeyF12, Mods{}, ""},
	} {
		if got := string(Translate(c.code, c.m)); got != c.want {
			t.Errorf("Translate(%d, %+v) = %q, want %q", c.code, c.m, got, c.want)
		}
	}
}

// FuzzFilter: whatever is typed and however the keyboard changes hands,
// the guest sees a consistent keyboard: a release or a repeat only of a
// key it saw go down and not yet up, no key while the host has the
// keyboard, never the combination's F12, and no key left held once the
// host takes it.
func FuzzFilter(f *testing.F) {
	f.Add([]byte{29, 1, 56, 1, 42, 1, 88, 1, 88, 0, 30, 1, 30, 0})
	f.Add([]byte{30, 1, 30, 2, 30, 0, 88, 1, 88, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl Filter
		guestDown := map[uint16]bool{}
		see := func(keys []Key, why string) {
			for _, k := range keys {
				switch {
				case k.Value == 1:
					guestDown[k.Code] = true
				case !guestDown[k.Code]:
					t.Fatalf("%s: the guest got %+v for a key it does not hold", why, k)
				case k.Value == 0:
					delete(guestDown, k.Code)
				}
			}
		}
		for i := 0; i+1 < len(b); i += 2 {
			code := uint16(b[i]) % 100
			if code == 99 {
				// A turn: the caller accepts the combination.
				to := Host
				if fl.Target() == Host {
					to = Guest
				}
				see(fl.Switch(to), "switch")
				if to == Host && len(guestDown) != 0 {
					t.Fatalf("the guest still holds %v with the host at the keyboard", guestDown)
				}
				continue
			}
			k := Key{Code: code, Value: int32(b[i+1] % 3)}
			target := fl.Target()
			out := fl.Feed(k)
			if len(out.Guest) > 0 && target == Host {
				t.Fatalf("the guest got %+v while the host has the keyboard", out.Guest)
			}
			if out.Host != nil && target == Guest {
				t.Fatalf("the host got %+v while the guest has the keyboard", out.Host)
			}
			if out.Combo && len(out.Guest) > 0 {
				t.Fatalf("the combination's key reached the guest")
			}
			see(out.Guest, "feed")
		}
	})
}
