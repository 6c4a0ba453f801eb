package profiles

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Storage is the disk layout the image gets.
type Storage struct {
	// ImageSize is the size of the raw disk image.
	ImageSize int64
	// ESPSize is the EFI system partition (FAT32).
	ESPSize int64
	// SystemSize is each of the two system slots (A and B).
	SystemSize int64
	// DataSize is the data partition at build time; 0 means "the rest of
	// the image". hostd grows it to fill the device on first boot.
	DataSize int64
	// Encrypt puts the data partition's filesystem inside LUKS2, made on
	// the first boot with a passphrase typed on a console and asked for
	// at every boot after.
	Encrypt bool
	// TPM seals the encrypted data partition's key to the laptop's TPM
	// 2.0 (PCR 7) instead of asking for a passphrase; a recovery key is
	// shown once at the first boot.
	TPM bool
	// TPMRange is where tpm is set, for diagnostics that need the boot
	// block too.
	TPMRange hcl.Range
	// DataDisk is where the data partition lives: DataDiskBoot (the disk
	// the host booted from, the default) or DataDiskInternal (a partition
	// hostd makes on an empty internal disk, so the guests' disks are not
	// on a slow USB stick).
	DataDisk string
	// DataDiskSerial, with DataDiskInternal, names the one internal disk
	// hostd may use, by its serial number.
	DataDiskSerial string
}

// Where the data partition lives.
const (
	DataDiskBoot     = "boot"
	DataDiskInternal = "internal"
)

// Layout limits, shared with images/.
const (
	MiB = 1 << 20
	// GPTOverhead covers the 1 MiB alignment gap at the start and the
	// backup GPT (33 sectors) at the end, rounded to whole MiB.
	GPTOverhead = 2 * MiB
	MinESPSize  = 64 * MiB
	MinDataSize = 16 * MiB
	// MaxSize bounds every size, so their sums cannot overflow.
	MaxSize = 64 << 40
)

func defaultStorage() Storage {
	return Storage{
		ImageSize:  2 << 30,
		ESPSize:    256 * MiB,
		SystemSize: 512 * MiB,
	}
}

var storageSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "image_size"},
		{Name: "esp_size"},
		{Name: "system_size"},
		{Name: "data_size"},
		{Name: "encrypt"},
		{Name: "tpm"},
		{Name: "data_disk"},
		{Name: "data_disk_serial"},
	},
}

func decodeStorage(b *hcl.Block, ctx *hcl.EvalContext, s *Storage) hcl.Diagnostics {
	content, diags := b.Body.Content(storageSchema)
	attrs := content.Attributes
	// ok holds the attributes that were given and decoded; only they are
	// checked further, so one mistake gives one diagnostic.
	ok := map[string]bool{}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"image_size", &s.ImageSize}, {"esp_size", &s.ESPSize}, {"system_size", &s.SystemSize}, {"data_size", &s.DataSize}} {
		v, d := decodeSize(attrs, f.name, ctx, *f.dst)
		diags = append(diags, d...)
		*f.dst = v
		if _, given := attrs[f.name]; given && !d.HasErrors() {
			ok[f.name] = true
		}
	}
	enc, _, d := evalBool(attrs, "encrypt", ctx)
	diags = append(diags, d...)
	s.Encrypt = enc
	tpm, tpmAttr, d := evalBool(attrs, "tpm", ctx)
	diags = append(diags, d...)
	if tpm && !enc && !d.HasErrors() {
		diags = append(diags, attrDiag(tpmAttr, "tpm without encryption",
			"tpm = true unlocks the encrypted data partition with the TPM: set encrypt = true too, or remove it."))
	}
	s.TPM = tpm && enc
	if tpmAttr != nil {
		s.TPMRange = tpmAttr.Range
	}
	s.DataDisk, _, d = oneOf(attrs, "data_disk", DataDiskBoot, []string{DataDiskBoot, DataDiskInternal}, ctx)
	diags = append(diags, d...)
	serial, serialAttr, d := evalString(attrs, "data_disk_serial", ctx)
	diags = append(diags, d...)
	if serialAttr != nil && serial != "" && !d.HasErrors() {
		switch {
		case s.DataDisk != DataDiskInternal:
			diags = append(diags, attrDiag(serialAttr, "data_disk_serial without an internal data disk",
				"data_disk_serial names the internal disk the data partition goes on: set data_disk = \"internal\" too, or remove it."))
		case !validSerial(serial):
			diags = append(diags, attrDiag(serialAttr, "Invalid disk serial",
				fmt.Sprintf("data_disk_serial %q must be 1 to 64 letters, digits, spaces, dots, dashes or underscores, as the disk reports it (on the host: cat /sys/block/nvme0n1/device/serial).", serial)))
		default:
			s.DataDiskSerial = strings.TrimSpace(serial)
		}
	}
	typeErrors := diags.HasErrors()

	for _, c := range []struct {
		name string
		v    int64
	}{{"image_size", s.ImageSize}, {"esp_size", s.ESPSize}, {"system_size", s.SystemSize}, {"data_size", s.DataSize}} {
		if a := attrs[c.name]; ok[c.name] && (c.v < 0 || c.v > MaxSize) {
			diags = append(diags, attrDiag(a, "Size too large",
				fmt.Sprintf("%s %s is beyond the %s thinhost lays out: a disk image, not a disk array.", c.name, FormatSize(c.v), FormatSize(MaxSize))))
			typeErrors = true
			continue
		}
		if a := attrs[c.name]; ok[c.name] && c.v%MiB != 0 {
			diags = append(diags, attrDiag(a, "Unaligned size",
				fmt.Sprintf("%s must be a whole number of MiB (partitions are 1 MiB aligned); %s is not.", c.name, FormatSize(c.v))))
		}
	}
	if a := attrs["esp_size"]; ok["esp_size"] && s.ESPSize < MinESPSize {
		diags = append(diags, attrDiag(a, "ESP too small",
			fmt.Sprintf("esp_size must be at least %s for a FAT32 EFI system partition.", FormatSize(MinESPSize))))
	}
	if a := attrs["data_size"]; ok["data_size"] && s.DataSize < MinDataSize {
		diags = append(diags, attrDiag(a, "Data partition too small",
			fmt.Sprintf("data_size must be at least %s.", FormatSize(MinDataSize))))
	}
	if typeErrors {
		// The total below would be computed from defaults and mislead.
		return diags
	}
	data := s.DataSize
	if data == 0 {
		data = MinDataSize
	}
	need := GPTOverhead + s.ESPSize + 2*s.SystemSize + data
	if s.ImageSize < need {
		rng := b.DefRange
		if a, ok := attrs["image_size"]; ok {
			rng = a.Expr.Range()
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Image too small",
			Detail: fmt.Sprintf("image_size %s cannot hold the GPT (%s), the ESP (%s), two system slots (%s each) and data (%s): make it at least %s.",
				FormatSize(s.ImageSize), FormatSize(GPTOverhead), FormatSize(s.ESPSize), FormatSize(s.SystemSize), FormatSize(data), FormatSize(need)),
			Subject: &rng})
	}
	return diags
}

// validSerial: what a disk's serial number may hold (NVMe pads with
// spaces, which hostd trims).
func validSerial(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
