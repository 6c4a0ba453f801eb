// Package power is the laptop's power life: the power button, the
// batteries and the charger (with a low-battery power-off), the lid and
// suspend with the guests paused, and the backlight and its keys.
package power
