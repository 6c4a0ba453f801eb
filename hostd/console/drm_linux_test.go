package console

import (
	"testing"
	"unsafe"
)

// The structs must match the kernel's, whose sizes the ioctl numbers
// carry (bits 16-29).
func TestDRMStructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		size uintptr
		req  uintptr
	}{
		{"drm_mode_card_res", unsafe.Sizeof(drmCardRes{}), drmGetResources},
		{"drm_mode_crtc", unsafe.Sizeof(drmCrtc{}), drmGetCrtc},
		{"drm_mode_crtc", unsafe.Sizeof(drmCrtc{}), drmSetCrtc},
		{"drm_mode_get_encoder", unsafe.Sizeof(drmEncoder{}), drmGetEncoder},
		{"drm_mode_get_connector", unsafe.Sizeof(drmConnector{}), drmGetConnector},
	} {
		if want := (c.req >> 16) & 0x3fff; c.size != want {
			t.Errorf("%s is %d bytes, the ioctl says %d", c.name, c.size, want)
		}
	}
}
