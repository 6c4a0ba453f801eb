package hostd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SoundCard is the ALSA playback device guests play through.
type SoundCard struct {
	// Card is the card's index and ID ("PCH"), Name its long name.
	Card       int
	ID, Name   string
	Device     int
	DeviceName string
	// Capture says the device records too (the guest's microphone).
	Capture bool
}

// ALSA is the device's name for alsa-lib, with sample-rate and format
// conversion (plughw): whatever the guest plays, the card takes.
func (s SoundCard) ALSA() string {
	return fmt.Sprintf("plughw:CARD=%s,DEV=%d", s.ID, s.Device)
}

func (s SoundCard) String() string {
	return fmt.Sprintf("card %s (%s), device %d (%s)", s.ID, s.Name, s.Device, s.DeviceName)
}

// PickSound chooses the playback device under asound (/proc/asound): an
// analog one (speakers and headphones) before HDMI and DisplayPort, which
// play only on a connected monitor; the lowest card, then device, first.
// ok is false without any playback device.
func PickSound(asound string) (SoundCard, bool) {
	b, err := os.ReadFile(filepath.Join(asound, "pcm"))
	if err != nil {
		return SoundCard{}, false
	}
	var cands []SoundCard
	for _, line := range strings.Split(string(b), "\n") {
		// "00-03: HDMI 0 : HDMI 0 : playback 1"
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		cardDev := strings.SplitN(strings.TrimSpace(f[0]), "-", 2)
		if len(cardDev) != 2 {
			continue
		}
		card, err1 := strconv.Atoi(cardDev[0])
		dev, err2 := strconv.Atoi(cardDev[1])
		if err1 != nil || err2 != nil {
			continue
		}
		rest := strings.Join(f[3:], ":")
		if !strings.Contains(rest, "playback") {
			continue
		}
		s := SoundCard{Card: card, Device: dev, DeviceName: strings.TrimSpace(f[1]), Capture: strings.Contains(rest, "capture")}
		id, err := os.ReadFile(filepath.Join(asound, fmt.Sprintf("card%d", card), "id"))
		if err != nil {
			continue
		}
		s.ID = strings.TrimSpace(string(id))
		s.Name = cardName(asound, card, s.ID)
		cands = append(cands, s)
	}
	if len(cands) == 0 {
		return SoundCard{}, false
	}
	digital := func(s SoundCard) bool {
		n := strings.ToUpper(s.DeviceName)
		return strings.Contains(n, "HDMI") || strings.Contains(n, "DP") || strings.Contains(n, "DISPLAYPORT")
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if digital(a) != digital(b) {
			return !digital(a)
		}
		if a.Card != b.Card {
			return a.Card < b.Card
		}
		return a.Device < b.Device
	})
	return cands[0], true
}

// cardName is the card's long name from asound/cards (" 0 [PCH ]: HDA-Intel
// - HDA Intel PCH"); its ID when that says nothing.
func cardName(asound string, card int, id string) string {
	b, _ := os.ReadFile(filepath.Join(asound, "cards"))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == strconv.Itoa(card) {
			if _, name, ok := strings.Cut(line, " - "); ok {
				return strings.TrimSpace(name)
			}
		}
	}
	return id
}

// PCMOwner reads who holds s's playback device open
// (asound/cardN/pcmDp/sub0/status): the process and the stream's state;
// pid 0 when it is closed.
func PCMOwner(asound string, s SoundCard) (pid int, state string) {
	b, err := os.ReadFile(filepath.Join(asound, fmt.Sprintf("card%d", s.Card), fmt.Sprintf("pcm%dp", s.Device), "sub0", "status"))
	if err != nil {
		return 0, ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "owner_pid":
			pid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "state":
			state = strings.TrimSpace(v)
		}
	}
	return pid, state
}
