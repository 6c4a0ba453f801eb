/*
 * thinhost's bare test guest: a multiboot kernel of a few KiB for the
 * emulated laptop, where the test guest runs under TCG inside TCG and a
 * Linux guest takes minutes to boot. It does what the end-to-end test
 * reads, and nothing else:
 *
 *   - says "up" on the first serial port (hostd logs it);
 *   - changes video mode on QEMU's standard VGA (Bochs VBE, 32 bits) as
 *     an OS does while it boots, 640x480, 1024x768 (the pattern upside
 *     down), and last 1280x800 with the known pattern,
 *     testguest.PatternTop over PatternBottom; then it says
 *     "screen: painting 1280x800";
 *   - reports every key pressed on the PS/2 keyboard as the Linux key
 *     code ("key 30" for A) and Ctrl+Alt+Del as "ctrl-alt-del";
 *   - counts its boots on its disk as the Linux test guest does: the first
 *     sector of the first virtio-blk disk holds "THINHOST-GUEST boot-N\n";
 *     it says "found=boot-N" (or "found=none") and writes boot-N+1, then
 *     says "wrote=boot-N+1" (a reset must bring back the snapshot's N);
 *   - powers off (ACPI S5) when the ACPI power button is pressed, or by
 *     itself once booted when its command line says
 *     "thinhost-guest-poweroff".
 *
 * Built with the host's gcc as a freestanding 32-bit ELF (testguest.BuildBare).
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define MB_MAGIC 0x1BADB002u
#define MB_FLAGS 0u

__attribute__((section(".multiboot"), aligned(4), used))
static const u32 multiboot_header[3] = {MB_MAGIC, MB_FLAGS, (u32)-(MB_MAGIC + MB_FLAGS)};

/* The pattern: keep in step with testguest.PatternTop/PatternBottom. */
#define TOP_RGB 0x20C060u
#define BOTTOM_RGB 0xC020A0u
#define WIDTH 1280
#define HEIGHT 800

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* The first serial port, as SeaBIOS left it (QEMU ignores the rate). */
#define COM1 0x3F8
static void putc_serial(char c) {
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (u8)c);
}
static void puts_serial(const char *s) {
	while (*s)
		putc_serial(*s++);
}
static void putu(u32 n) {
	char b[11];
	int i = 0;
	do {
		b[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (i)
		putc_serial(b[--i]);
}
static void say(const char *s) {
	puts_serial("thinhost-guest: ");
	puts_serial(s);
	puts_serial("\n");
}

/* PCI configuration mechanism 1. */
static u32 pci_read(u32 bus, u32 dev, u32 fn, u32 off) {
	outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC));
	return inl(0xCFC);
}

static void pci_write(u32 bus, u32 dev, u32 fn, u32 off, u32 v) {
	outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC));
	outl(0xCFC, v);
}

/* The linear framebuffer: BAR0 of QEMU's standard VGA (1234:1111). */
static u32 *find_lfb(void) {
	for (u32 dev = 0; dev < 32; dev++) {
		if (pci_read(0, dev, 0, 0) == 0x11111234u)
			return (u32 *)(pci_read(0, dev, 0, 0x10) & ~0xFu);
	}
	return 0;
}

#define VBE_INDEX 0x1CE
#define VBE_DATA 0x1CF
static void vbe(u16 index, u16 value) {
	outw(VBE_INDEX, index);
	outw(VBE_DATA, value);
}

/* The CMOS clock's seconds, to wait without a timer. */
static u8 rtc_seconds(void) {
	outb(0x70, 0x00);
	return inb(0x71);
}

/* wait lets about n seconds pass (at least n-1). */
static void wait(int n) {
	u8 last = rtc_seconds();
	while (n > 0) {
		u8 now = rtc_seconds();
		if (now != last) {
			last = now;
			n--;
		}
	}
}

/* fill sets a mode and paints its upper half top, its lower half bottom. */
static void fill(u32 *fb, u32 w, u32 h, u32 top, u32 bottom) {
	vbe(4, 0);  /* disable */
	vbe(1, w);  /* x resolution */
	vbe(2, h);  /* y resolution */
	vbe(3, 32); /* bits per pixel */
	vbe(4, 0x41); /* enabled, linear framebuffer */
	for (u32 y = 0; y < h; y++) {
		u32 c = y < h / 2 ? top : bottom;
		u32 *row = fb + y * w;
		for (u32 x = 0; x < w; x++)
			row[x] = c;
	}
}

/*
 * paint changes mode as an OS does while it boots (the firmware's mode,
 * a boot screen, the desktop's), a second or two in each, and ends in
 * WIDTH x HEIGHT with the pattern: the host's display has to follow every
 * change.
 */
static void paint(void) {
	u32 *fb = find_lfb();
	if (!fb) {
		say("screen: none");
		return;
	}
	outw(VBE_INDEX, 0);
	if ((inw(VBE_DATA) & 0xFFF0) != 0xB0C0) {
		say("screen: no Bochs VBE");
		return;
	}
	say("screen: boot modes");
	fill(fb, 640, 480, 0x000080u, 0x000080u);
	wait(2);
	fill(fb, 1024, 768, BOTTOM_RGB, TOP_RGB);
	wait(2);
	fill(fb, WIDTH, HEIGHT, TOP_RGB, BOTTOM_RGB);
	puts_serial("thinhost-guest: screen: painting ");
	putu(WIDTH);
	putc_serial('x');
	putu(HEIGHT);
	putc_serial('\n');
}

/*
 * The boot counter on a virtio-blk disk, through the legacy (transitional)
 * virtio PCI interface QEMU gives a device on the root bus: one virtqueue
 * in static memory (physical = virtual here), one request at a time,
 * polled.
 */
#define VIRTIO_HOST_FEATURES 0x00
#define VIRTIO_GUEST_FEATURES 0x04
#define VIRTIO_QUEUE_PFN 0x08
#define VIRTIO_QUEUE_SIZE 0x0C
#define VIRTIO_QUEUE_SELECT 0x0E
#define VIRTIO_QUEUE_NOTIFY 0x10
#define VIRTIO_STATUS 0x12
#define QMAX 256

struct vdesc { u32 addr_lo, addr_hi, len; u16 flags, next; };
struct vq {
	struct vdesc desc[QMAX];                          /* 4096 bytes */
	volatile u16 avail_flags, avail_idx, avail_ring[QMAX], used_event;
	u8 pad[4096 - 2 * (QMAX + 3)];
	volatile u16 used_flags, used_idx;
	volatile u32 used_ring[2 * QMAX];
	volatile u16 avail_event;
};
static struct vq queue __attribute__((aligned(4096)));
static struct { u32 type, ioprio, sector_lo, sector_hi; } blk_hdr;
static volatile u8 blk_status;
static u8 sector[512];
static u16 blk_io;
static u16 qsize;

static u16 find_virtio_blk(void) {
	for (u32 dev = 0; dev < 32; dev++) {
		if (pci_read(0, dev, 0, 0) != 0x10011AF4u)
			continue;
		u32 bar = pci_read(0, dev, 0, 0x10);
		if (!(bar & 1))
			return 0; /* not the legacy interface */
		u32 cmd = pci_read(0, dev, 0, 0x04) & 0xFFFF;
		pci_write(0, dev, 0, 0x04, cmd | 0x5); /* I/O space, bus master */
		return (u16)(bar & ~3u);
	}
	return 0;
}

static int blk_init(void) {
	blk_io = find_virtio_blk();
	if (!blk_io)
		return 0;
	outb(blk_io + VIRTIO_STATUS, 0);     /* reset */
	outb(blk_io + VIRTIO_STATUS, 1 | 2); /* acknowledge, driver */
	(void)inl(blk_io + VIRTIO_HOST_FEATURES);
	outl(blk_io + VIRTIO_GUEST_FEATURES, 0);
	outw(blk_io + VIRTIO_QUEUE_SELECT, 0);
	qsize = inw(blk_io + VIRTIO_QUEUE_SIZE);
	if (qsize != QMAX) /* the layout above is for QEMU's default size */
		return 0;
	outl(blk_io + VIRTIO_QUEUE_PFN, (u32)&queue >> 12);
	outb(blk_io + VIRTIO_STATUS, 1 | 2 | 4); /* driver ok */
	return 1;
}

/* blk_rw reads (write 0) or writes sector 0; it returns 1 on success. */
static int blk_rw(int write) {
	blk_hdr.type = write ? 1 : 0;
	blk_hdr.ioprio = 0;
	blk_hdr.sector_lo = blk_hdr.sector_hi = 0;
	blk_status = 0xFF;
	queue.desc[0] = (struct vdesc){(u32)&blk_hdr, 0, sizeof blk_hdr, 1, 1};
	queue.desc[1] = (struct vdesc){(u32)sector, 0, 512, (u16)(write ? 1 : 1 | 2), 2};
	queue.desc[2] = (struct vdesc){(u32)&blk_status, 0, 1, 2, 0};
	u16 seen = queue.used_idx;
	queue.avail_ring[queue.avail_idx % qsize] = 0;
	__asm__ volatile("" ::: "memory");
	queue.avail_idx++;
	__asm__ volatile("" ::: "memory");
	outw(blk_io + VIRTIO_QUEUE_NOTIFY, 0);
	while (queue.used_idx == seen)
		;
	return blk_status == 0;
}

static const char magic[] = "THINHOST-GUEST boot-";

static void boot_count(void) {
	if (!blk_init()) {
		say("disk: none");
		return;
	}
	if (!blk_rw(0)) {
		say("disk: read failed");
		return;
	}
	u32 n = 0;
	int ok = 1, digits = 0;
	for (u32 i = 0; i < sizeof magic - 1; i++)
		ok &= sector[i] == (u8)magic[i];
	for (u32 i = sizeof magic - 1; ok && i < 30 && sector[i] >= '0' && sector[i] <= '9'; i++, digits++)
		n = n * 10 + (sector[i] - '0');
	if (!ok || !digits || sector[sizeof magic - 1 + digits] != '\n') {
		n = 0;
		say("found=none");
	} else {
		puts_serial("thinhost-guest: found=boot-");
		putu(n);
		putc_serial('\n');
	}
	for (u32 i = 0; i < 512; i++)
		sector[i] = 0;
	u32 at = 0;
	for (; at < sizeof magic - 1; at++)
		sector[at] = (u8)magic[at];
	char b[11];
	int k = 0;
	u32 m = n + 1;
	do {
		b[k++] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	while (k)
		sector[at++] = (u8)b[--k];
	sector[at] = '\n';
	if (!blk_rw(1)) {
		say("disk: write failed");
		return;
	}
	puts_serial("thinhost-guest: wrote=boot-");
	putu(n + 1);
	putc_serial('\n');
}

/*
 * ACPI power management at the I/O base SeaBIOS gives QEMU's PIIX4 and
 * ICH9 alike.
 */
#define PM_BASE 0x600
#define PM1_STS (PM_BASE + 0)
#define PM1_EN (PM_BASE + 2)
#define PM1_CNT (PM_BASE + 4)
#define PWRBTN (1u << 8)

/* Set-1 scan codes (the i8042 translates) to Linux key codes: equal for
 * the plain keys; the E0-prefixed ones the test uses are mapped. */
static u32 linux_code(u8 sc, int e0) {
	if (!e0)
		return sc;
	switch (sc) {
	case 0x53: return 111; /* Delete */
	case 0x1C: return 96;  /* keypad Enter */
	case 0x1D: return 97;  /* right Ctrl */
	case 0x38: return 100; /* right Alt */
	case 0x48: return 103; /* Up */
	case 0x50: return 108; /* Down */
	case 0x4B: return 105; /* Left */
	case 0x4D: return 106; /* Right */
	}
	return 0x100 | sc;
}

/* The multiboot information's address, which the loader leaves in EBX. */
u32 mbi_addr;

/* cmdline_has says whether the kernel command line (multiboot) holds
 * word. */
static int cmdline_has(const char *word) {
	if (!mbi_addr || !(*(volatile u32 *)mbi_addr & 4))
		return 0;
	const char *c = (const char *)*(volatile u32 *)(mbi_addr + 16);
	for (; c && *c; c++) {
		int i = 0;
		while (word[i] && c[i] == word[i])
			i++;
		if (!word[i])
			return 1;
	}
	return 0;
}

/* USB: QEMU's xHCI controller (class 0C0330) on the root bus. Its ports'
 * connect status bits (PORTSC.CCS) say a device arrived or left, as a stick
 * hostd hot-plugs into the guest does, without driving the controller. */
static volatile u8 *xhci_ports;
static u32 xhci_nports;
static u32 usb_connected; /* a bit per port */

static u32 portsc(u32 p) { return *(volatile u32 *)(xhci_ports + 0x10 * p); }

static void xhci_find(void) {
	for (u32 dev = 0; dev < 32; dev++) {
		if (pci_read(0, dev, 0, 0) == 0xFFFFFFFFu || pci_read(0, dev, 0, 0x08) >> 8 != 0x0C0330u)
			continue;
		u32 lo = pci_read(0, dev, 0, 0x10);
		u32 hi = (lo & 0x6) == 0x4 ? pci_read(0, dev, 0, 0x14) : 0;
		if (hi != 0 || (lo & ~0xFu) == 0) {
			say("usb: the xHCI controller's registers are out of reach");
			return;
		}
		u32 cmd = pci_read(0, dev, 0, 0x04) & 0xFFFF;
		pci_write(0, dev, 0, 0x04, cmd | 0x2); /* memory space */
		volatile u8 *base = (volatile u8 *)(lo & ~0xFu);
		xhci_nports = *(volatile u32 *)(base + 4) >> 24; /* HCSPARAMS1.MaxPorts */
		if (xhci_nports > 32)
			xhci_nports = 32;
		xhci_ports = base + base[0] + 0x400; /* CAPLENGTH, then the port registers */
		for (u32 p = 0; p < xhci_nports; p++)
			if (portsc(p) & 1)
				usb_connected |= 1u << p;
		puts_serial("thinhost-guest: usb: ");
		putu(xhci_nports);
		puts_serial(" ports, devices on ports:");
		for (u32 p = 0; p < xhci_nports; p++)
			if (usb_connected & 1u << p) {
				putc_serial(' ');
				putu(p + 1);
			}
		if (!usb_connected)
			puts_serial(" none");
		putc_serial('\n');
		return;
	}
}

static void xhci_poll(void) {
	for (u32 p = 0; p < xhci_nports; p++) {
		u32 sc = portsc(p), bit = 1u << p;
		if (!(sc & 1) == !(usb_connected & bit))
			continue;
		usb_connected ^= bit;
		puts_serial("thinhost-guest: usb port ");
		putu(p + 1);
		if (sc & 1) {
			puts_serial(": device connected, speed ");
			putu(sc >> 10 & 0xF);
		} else {
			puts_serial(": device disconnected");
		}
		putc_serial('\n');
	}
}

void main(void) {
	/* Clear, then listen, before anything else: a press while the disk
	 * is counted or the screen painted (seconds under TCG inside TCG)
	 * stays latched in PM1_STS for the loop below. */
	outw(PM1_STS, PWRBTN);
	outw(PM1_EN, PWRBTN);
	say("up");
	boot_count();
	paint();
	if (cmdline_has("thinhost-guest-poweroff")) {
		/* As Windows shut down from its Start menu: by itself. */
		say("shutting down by itself");
		outw(PM1_CNT, 1u << 13);
	}
	xhci_find();
	int e0 = 0, ctrl = 0, alt = 0;
	u32 spins = 0;
	for (;;) {
		if ((++spins & 0x7FF) == 0)
			xhci_poll();
		if (inw(PM1_STS) & PWRBTN) {
			say("power button: powering off");
			outw(PM1_STS, PWRBTN);
			outw(PM1_CNT, 1u << 13); /* SLP_EN, SLP_TYP 0: S5 on QEMU */
		}
		u8 st = inb(0x64);
		if (!(st & 1))
			continue;
		u8 sc = inb(0x60);
		if (st & 0x20) /* the mouse's */
			continue;
		if (sc == 0xE0) {
			e0 = 1;
			continue;
		}
		int up = sc & 0x80;
		u32 code = linux_code(sc & 0x7F, e0);
		e0 = 0;
		if (code == 29 || code == 97)
			ctrl = !up;
		if (code == 56 || code == 100)
			alt = !up;
		if (up)
			continue;
		puts_serial("thinhost-guest: key ");
		putu(code);
		putc_serial('\n');
		if (code == 111 && ctrl && alt)
			say("ctrl-alt-del");
	}
}

static u8 stack[16384] __attribute__((aligned(16)));

__attribute__((naked, noreturn)) void _start(void) {
	__asm__ volatile(
		"cli\n"
		"movl %%ebx, mbi_addr\n"
		"movl %0, %%esp\n"
		"call main\n"
		"1: hlt\n"
		"jmp 1b\n"
		:
		: "i"(stack + sizeof stack));
}
