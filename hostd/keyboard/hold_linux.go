package keyboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/thinhost/thinhost/hostd/input"
	"golang.org/x/sys/unix"
)

// Linux's uinput and evdev ioctls and event types (linux/uinput.h,
// linux/input.h).
const (
	uiSetEvBit  = 0x40045564 // UI_SET_EVBIT
	uiSetKeyBit = 0x40045565 // UI_SET_KEYBIT
	uiDevSetup  = 0x405c5503 // UI_DEV_SETUP
	uiDevCreate = 0x5501     // UI_DEV_CREATE
	eviocGrab   = 0x40044590 // EVIOCGRAB
	busVirtual  = 0x06
)

// virtualKeys are the key codes the virtual keyboard declares: what
// keyboards, their media keys and laptops' hotkeys send, and none of the
// mouse, joystick and tablet buttons (BTN_*), so that nothing takes it
// for one of those.
var virtualKeys = [][2]int{{1, 0xff}, {0x160, 0x2bf}}

// VirtualName is the virtual keyboard's name, as the kernel lists it.
const VirtualName = "thinhost keyboard"

// Holder is the keyboard while guests have the panel. Open makes the
// virtual keyboard; Hold takes every keyboard for it until Release.
type Holder struct {
	log   *slog.Logger
	class string
	// Combo is asked, on the host key combination, whether the keys go
	// to to; typed gets what a key on the host's console types. Both
	// are called from the goroutine reading a keyboard.
	combo func(to Target) bool
	typed func([]byte)

	out   *os.File
	outMu sync.Mutex

	mu       sync.Mutex
	filter   Filter
	capsLock bool
	held     map[string]*os.File
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Open makes the virtual keyboard (/dev/uinput: the uinput module must
// be loaded). Do it before any program that reads keyboards only at its
// start (QEMU's SDL) starts.
func Open(log *slog.Logger, combo func(to Target) bool, typed func([]byte)) (*Holder, error) {
	f, err := os.OpenFile("/dev/uinput", os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the virtual keyboard device: %w", err)
	}
	fd := int(f.Fd())
	setup := func() error {
		for _, ev := range []int{input.EvSyn, input.EvKey} {
			if err := unix.IoctlSetInt(fd, uiSetEvBit, ev); err != nil {
				return err
			}
		}
		for _, r := range virtualKeys {
			for k := r[0]; k <= r[1]; k++ {
				if err := unix.IoctlSetInt(fd, uiSetKeyBit, k); err != nil {
					return err
				}
			}
		}
		// struct uinput_setup: struct input_id (bustype, vendor,
		// product, version), name[80], ff_effects_max.
		var s [92]byte
		binary.LittleEndian.PutUint16(s[0:], busVirtual)
		copy(s[8:87], VirtualName)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uiDevSetup, uintptr(unsafe.Pointer(&s[0]))); errno != 0 {
			return errno
		}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uiDevCreate, 0)
		if errno != 0 {
			return errno
		}
		return nil
	}
	if err := setup(); err != nil {
		f.Close()
		return nil, fmt.Errorf("make the virtual keyboard: %w", err)
	}
	return &Holder{log: log, class: "/sys/class/input", combo: combo, typed: typed, out: f, held: map[string]*os.File{}}, nil
}

// Hold takes every keyboard for the virtual one, and each keyboard that
// appears until Release: nothing else reads them then (the kernel's
// console, QEMU, the host's key watchers read the virtual keyboard).
func (h *Holder) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		return
	}
	h.filter = Filter{}
	h.stop = make(chan struct{})
	h.grabNew()
	h.wg.Add(1)
	go func(stop chan struct{}) {
		defer h.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.mu.Lock()
				if h.stop == stop {
					h.grabNew()
				}
				h.mu.Unlock()
			}
		}
	}(h.stop)
}

// Release gives every keyboard back.
func (h *Holder) Release() {
	h.mu.Lock()
	if h.stop == nil {
		h.mu.Unlock()
		return
	}
	close(h.stop)
	h.stop = nil
	for name, f := range h.held {
		if f != nil {
			f.Close() // ends the grab, and its reader
		}
		delete(h.held, name)
	}
	up := h.filter.Switch(Host) // what the guest holds goes up
	h.filter = Filter{}
	h.mu.Unlock()
	h.send(up)
	h.wg.Wait()
}

// SetTarget gives the keys to t (the host's console or the guest).
func (h *Holder) SetTarget(t Target) {
	h.mu.Lock()
	up := h.filter.Switch(t)
	h.mu.Unlock()
	h.send(up)
}

// Target says where the keys go.
func (h *Holder) Target() Target {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.filter.Target()
}

// grabNew takes the keyboards not yet held. h.mu is held.
func (h *Holder) grabNew() {
	entries, err := os.ReadDir(h.class)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if _, seen := h.held[name]; seen || !strings.HasPrefix(name, "event") {
			continue
		}
		dev := filepath.Join(h.class, name, "device")
		caps, err := os.ReadFile(filepath.Join(dev, "capabilities", "key"))
		if err != nil || !IsKeyboard(string(caps)) {
			continue
		}
		if n, err := os.ReadFile(filepath.Join(dev, "name")); err == nil && strings.TrimSpace(string(n)) == VirtualName {
			continue
		}
		path := filepath.Join("/dev/input", name)
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not there yet: the next look
		}
		if err := unix.IoctlSetInt(int(f.Fd()), eviocGrab, 1); err != nil {
			h.log.Warn("take the keyboard: the guest and the host's console may both read it", "device", path, "err", err)
			f.Close()
			h.held[name] = nil // not looked at again
			continue
		}
		h.held[name] = f
		h.log.Info("keyboard held for the guest on the panel", "device", path)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			err := h.read(f)
			h.mu.Lock()
			if h.held[name] == f {
				delete(h.held, name) // gone (unplugged): a new one may come under its name
			}
			h.mu.Unlock()
			f.Close()
			if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				h.log.Info("keyboard let go", "device", path, "err", err)
			}
		}()
	}
}

// read passes one keyboard's key events on until it ends.
func (h *Holder) read(f *os.File) error {
	buf := make([]byte, input.EventSize*64)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return err
		}
		for i := 0; i+input.EventSize <= n; i += input.EventSize {
			e := buf[i : i+input.EventSize]
			if binary.LittleEndian.Uint16(e[16:]) != input.EvKey {
				continue
			}
			h.key(Key{Code: binary.LittleEndian.Uint16(e[18:]), Value: int32(binary.LittleEndian.Uint32(e[20:]))})
		}
	}
}

func (h *Holder) key(k Key) {
	h.mu.Lock()
	out := h.filter.Feed(k)
	var typed []byte
	if out.Host != nil && k.Value != 0 {
		if k.Code == KeyCapsLock && k.Value == 1 {
			h.capsLock = !h.capsLock
		}
		typed = Translate(k.Code, ModsOf(h.filter.Held, h.capsLock))
	}
	to := Host
	if h.filter.Target() == Host {
		to = Guest
	}
	h.mu.Unlock()
	h.send(out.Guest)
	if len(typed) > 0 && h.typed != nil {
		h.typed(typed)
	}
	if out.Combo && h.combo != nil && h.combo(to) {
		h.SetTarget(to)
	}
}

// send writes keys to the virtual keyboard, each followed by a report.
func (h *Holder) send(keys []Key) {
	if len(keys) == 0 {
		return
	}
	buf := make([]byte, 0, 2*input.EventSize*len(keys))
	for _, k := range keys {
		buf = input.AppendEvent(buf, input.EvKey, k.Code, k.Value)
		buf = input.AppendEvent(buf, input.EvSyn, 0, 0)
	}
	h.outMu.Lock()
	defer h.outMu.Unlock()
	if _, err := h.out.Write(buf); err != nil {
		h.log.Warn("pass keys to the virtual keyboard", "err", err)
	}
}

// Close gives the keyboards back and removes the virtual keyboard.
func (h *Holder) Close() error {
	h.Release()
	return h.out.Close()
}
