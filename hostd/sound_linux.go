package hostd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
)

// asoundDir is the kernel's ALSA state.
const asoundDir = "/proc/asound"

// soundCard is the card guests play through: none unless a guest has
// sound, the image carries QEMU's ALSA backend and alsa-lib's
// configuration, and the host has a playback device (its drivers load
// with the system image's modules, which guests wait for).
func (d *Daemon) soundCard() (SoundCard, bool) {
	want := false
	for _, v := range d.opts.Config.VMs {
		want = want || !v.NoSound
	}
	if !want {
		return SoundCard{}, false
	}
	for _, f := range []string{sysimage.Dir + vm.QEMUModuleDir + "/audio-alsa.so", sysimage.Dir + layout.ALSAConfigDir + "/alsa.conf"} {
		if _, err := os.Stat(f); err != nil {
			d.opts.Log.Info("guests get a silent sound device: the image lacks QEMU's ALSA backend", "missing", f)
			return SoundCard{}, false
		}
	}
	card, ok := PickSound(asoundDir)
	// HD Audio probes its codecs after the driver loaded: a card the
	// laptop has may come a few seconds later.
	for deadline := time.Now().Add(15 * time.Second); !ok && hasAudioDevice("/sys/bus/pci/devices") && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		card, ok = PickSound(asoundDir)
	}
	if !ok {
		d.opts.Log.Info("guests get a silent sound device: the host has no playback device")
		return SoundCard{}, false
	}
	d.sound = &card
	return card, true
}

// watchSound says once which guest's QEMU holds the sound card open
// (QEMU opens it when it starts the guest's audio device), or that none
// did within a minute.
func (d *Daemon) watchSound(ctx context.Context) {
	card := d.sound
	if card == nil || d.vms == nil {
		return
	}
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if pid, state := PCMOwner(asoundDir, *card); pid != 0 {
			for _, v := range d.vms.Status() {
				if v.Pid == pid {
					fmt.Fprintf(d.opts.Console, "thinhost: sound: vm %s holds %s (%s)\n", v.Name, card.ALSA(), state)
					return
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	d.opts.Log.Info("no guest holds the sound card", "card", card.ALSA())
}

// hasAudioDevice says whether a PCI audio device (class 04 01 or 04 03:
// HD Audio) with a driver bound is under dir (/sys/bus/pci/devices): one
// whose card may still be on its way.
func hasAudioDevice(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := os.Stat(dir + "/" + e.Name() + "/driver"); err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name() + "/class")
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(b))
		if strings.HasPrefix(c, "0x0401") || strings.HasPrefix(c, "0x0403") {
			return true
		}
	}
	return false
}

// alsactl keeps the mixer's state; mixerStateFile is where, per card.
const alsactl = "/usr/sbin/alsactl"

func mixerStateFile(card string) string {
	return filepath.Join(storage.DataDir, "state", "mixer-"+card+".state")
}

// startMixer sets the card's mixer: as the last boot left it, or, the
// first time, to 80% and unmuted on its output controls. ALSA drivers
// start muted: without this a guest plays into silence.
func (d *Daemon) startMixer(ctx context.Context) {
	card := d.sound
	if card == nil {
		return
	}
	log := d.opts.Log
	state := mixerStateFile(card.ID)
	if d.data != nil && d.data.Mounted {
		if _, err := os.Stat(state); err == nil {
			out, err := sysimage.Command(ctx, alsactl, "--no-init-fallback", "-f", state, "restore", card.ID).CombinedOutput()
			if err == nil {
				fmt.Fprintf(d.opts.Console, "thinhost: sound: mixer of %s as the last boot left it\n", card.ID)
				return
			}
			log.Warn("restore the mixer", "card", card.ID, "file", state, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	// The first time: the card's use-case configuration (alsa-ucm-conf),
	// where there is one for it, sets the card up as its maker meant
	// (the routes to the speakers of SOF and SoundWire cards, which a
	// driver leaves to user space); alsactl init runs its boot and
	// defaults sequences. Then the levels below.
	ucm := ""
	if _, err := os.Stat(sysimage.Dir + layout.ALSAUCMDir); err == nil {
		if out, err := sysimage.Command(ctx, alsactl, "init", card.ID).CombinedOutput(); err != nil {
			log.Info("alsactl init: the card has no use-case configuration, or it did not apply", "card", card.ID, "err", err, "output", strings.TrimSpace(string(out)))
		} else {
			ucm = ", set up by its use-case configuration"
		}
	}
	set := 0
	for _, c := range MixerDefaults {
		if err := sysimage.Command(ctx, amixer, "-q", "-c", card.ID, "sset", c, MixerDefaultLevel, "unmute").Run(); err == nil {
			set++
		}
	}
	fmt.Fprintf(d.opts.Console, "thinhost: sound: mixer of %s at %s, unmuted (%d controls)%s\n", card.ID, MixerDefaultLevel, set, ucm)
}

// storeMixer keeps the card's mixer state for the next boot.
func (d *Daemon) storeMixer() {
	card := d.sound
	if card == nil || d.data == nil || !d.data.Mounted {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := sysimage.Command(ctx, alsactl, "-f", mixerStateFile(card.ID), "store", card.ID).CombinedOutput(); err != nil {
		d.opts.Log.Warn("keep the mixer's state", "card", card.ID, "err", err, "output", strings.TrimSpace(string(out)))
	}
}
