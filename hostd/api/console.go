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
)
