package api

// hostd's console lines that programs read (`thinhost run --check`, the
// tests): their contract with hostd, defined once. Never change them.
const (
	// ReadyLine is printed once hostd is up.
	ReadyLine = "thinhost: hostd ready"
	// HealthPrefix starts the health line, printed before ReadyLine and
	// again at power-off; anything but HealthOK is a degraded host.
	HealthPrefix = "thinhost: health: "
	HealthOK     = HealthPrefix + "ok"
	// SecureBootPrefix starts the line on Secure Boot.
	SecureBootPrefix = "thinhost: secure boot: "
	// SlotsPrefix starts the line on the A/B slots, printed once the
	// booted slot is marked good; UpdatePrefix the lines on updates.
	SlotsPrefix  = "thinhost: slots: "
	UpdatePrefix = "thinhost: update: "
	// DataPrefix starts the line on the data partition ("thinhost: data
	// partition NOT MOUNTED: ..." when it is not).
	DataPrefix = "thinhost: data "
	// ServicesPrefix starts the line on the supervised services.
	ServicesPrefix = "thinhost: services: "
	// APIPrefix starts the line on where the API listens; on the host's
	// network it names the certificate's fingerprint after
	// APIFingerprintLabel.
	APIPrefix           = "thinhost: api on "
	APIFingerprintLabel = "sha256"
)
