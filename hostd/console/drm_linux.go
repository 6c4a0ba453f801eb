package console

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's DRM ioctls hostd uses (drm.h, drm_mode.h), with the
// sizes of their structs in the numbers.
const (
	drmSetMaster      = 0x641e     // DRM_IOCTL_SET_MASTER
	drmDropMaster     = 0x641f     // DRM_IOCTL_DROP_MASTER
	drmGetResources   = 0xc04064a0 // DRM_IOCTL_MODE_GETRESOURCES
	drmGetCrtc        = 0xc06864a1 // DRM_IOCTL_MODE_GETCRTC
	drmSetCrtc        = 0xc06864a2 // DRM_IOCTL_MODE_SETCRTC
	drmGetEncoder     = 0xc01464a6 // DRM_IOCTL_MODE_GETENCODER
	drmGetConnector   = 0xc05064a7 // DRM_IOCTL_MODE_GETCONNECTOR
	drmModeInfoLength = 68
	drmMajor          = 226
)

type drmCardRes struct {
	FbIDPtr, CrtcIDPtr, ConnectorIDPtr, EncoderIDPtr     uint64
	CountFbs, CountCrtcs, CountConnectors, CountEncoders uint32
	MinWidth, MaxWidth, MinHeight, MaxHeight             uint32
}

type drmCrtc struct {
	SetConnectorsPtr uint64
	CountConnectors  uint32
	CrtcID, FbID     uint32
	X, Y             uint32
	GammaSize        uint32
	ModeValid        uint32
	Mode             [drmModeInfoLength]byte
}

type drmEncoder struct {
	EncoderID, EncoderType, CrtcID, PossibleCrtcs, PossibleClones uint32
}

type drmConnector struct {
	EncodersPtr, ModesPtr, PropsPtr, PropValuesPtr uint64
	CountModes, CountProps, CountEncoders          uint32
	EncoderID, ConnectorID, ConnectorType          uint32
	ConnectorTypeID, Connection, MMWidth, MMHeight uint32
	Subpixel, _                                    uint32
}

func drmIoctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN:
			continue
		default:
			return errno
		}
	}
}

// screenLease is the panel taken from a guest's QEMU for the host's
// console. QEMU's SDL draws through the kernel's DRM as its master, and
// while it is, the console's text would show only until the guest's next
// frame: hostd takes a copy of QEMU's DRM descriptor (pidfd_getfd), drops
// its master, and keeps what the screen showed, to set it again and give
// the master back on the way back to the guest. QEMU keeps running; its
// page flips fail meanwhile, and SDL goes on.
type screenLease struct {
	fd     int
	owner  int
	crtcs  []drmCrtc
	conns  map[uint32][]uint32 // the connectors each CRTC drives
	device string
}

// takeScreen finds the process that is the DRM master of a card (not
// hostd) and drops its master.
func takeScreen() (*screenLease, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var tried []string
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, f := range fds {
			// By the device itself, not the link's text: a DRM card
			// (major 226; render nodes from minor 128 on).
			var st unix.Stat_t
			if unix.Stat(filepath.Join("/proc", p.Name(), "fd", f.Name()), &st) != nil ||
				st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != drmMajor || unix.Minor(st.Rdev) >= 128 {
				continue
			}
			n, _ := strconv.Atoi(f.Name())
			l, err := dropMaster(pid, n)
			if err != nil {
				tried = append(tried, fmt.Sprintf("pid %d fd %d: %v", pid, n, err))
				continue
			}
			l.device = fmt.Sprintf("DRM card %d", unix.Minor(st.Rdev))
			return l, nil
		}
	}
	if len(tried) == 0 {
		return nil, errors.New("no process draws on the screen through DRM")
	}
	return nil, fmt.Errorf("no DRM master found (%s)", strings.Join(tried, "; "))
}

func dropMaster(pid, fd int) (*screenLease, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("open pid %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("copy its descriptor: %w", err)
	}
	if err := drmIoctl(dup, drmDropMaster, nil); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("drop its DRM master: %w", err)
	}
	l := &screenLease{fd: dup, owner: pid, conns: map[uint32][]uint32{}}
	l.save()
	return l, nil
}

// save keeps what each lit CRTC shows, and through which connectors.
// Best effort: without it the guest shows again at its next frame.
func (l *screenLease) save() {
	var res drmCardRes
	if drmIoctl(l.fd, drmGetResources, unsafe.Pointer(&res)) != nil || res.CountCrtcs == 0 {
		return
	}
	crtcs := make([]uint32, res.CountCrtcs)
	conns := make([]uint32, res.CountConnectors+1)
	res = drmCardRes{CrtcIDPtr: uint64(uintptr(unsafe.Pointer(&crtcs[0]))), CountCrtcs: uint32(len(crtcs)),
		ConnectorIDPtr: uint64(uintptr(unsafe.Pointer(&conns[0]))), CountConnectors: uint32(len(conns) - 1)}
	if drmIoctl(l.fd, drmGetResources, unsafe.Pointer(&res)) != nil {
		return
	}
	for _, id := range conns[:res.CountConnectors] {
		c := drmConnector{ConnectorID: id}
		if drmIoctl(l.fd, drmGetConnector, unsafe.Pointer(&c)) != nil || c.EncoderID == 0 {
			continue
		}
		e := drmEncoder{EncoderID: c.EncoderID}
		if drmIoctl(l.fd, drmGetEncoder, unsafe.Pointer(&e)) != nil || e.CrtcID == 0 {
			continue
		}
		l.conns[e.CrtcID] = append(l.conns[e.CrtcID], id)
	}
	for _, id := range crtcs[:min(int(res.CountCrtcs), len(crtcs))] {
		c := drmCrtc{CrtcID: id}
		if drmIoctl(l.fd, drmGetCrtc, unsafe.Pointer(&c)) == nil && c.FbID != 0 && c.ModeValid != 0 && len(l.conns[id]) > 0 {
			l.crtcs = append(l.crtcs, c)
		}
	}
}

// giveBack makes the guest's QEMU the master again and shows its last
// frame.
func (l *screenLease) giveBack() error {
	defer l.close()
	if err := drmIoctl(l.fd, drmSetMaster, nil); err != nil {
		return fmt.Errorf("give the DRM master of %s back to pid %d: %w", l.device, l.owner, err)
	}
	var errs []error
	for _, c := range l.crtcs {
		conns := l.conns[c.CrtcID]
		c.SetConnectorsPtr = uint64(uintptr(unsafe.Pointer(&conns[0])))
		c.CountConnectors = uint32(len(conns))
		if err := drmIoctl(l.fd, drmSetCrtc, unsafe.Pointer(&c)); err != nil {
			errs = append(errs, fmt.Errorf("show the guest's frame on CRTC %d: %w", c.CrtcID, err))
		}
	}
	return errors.Join(errs...)
}

func (l *screenLease) close() {
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}
