# qemu-test.hcl: a thinhost image for QEMU, built from Debian's archive
# (pinned by qemu-test.lock beside it). examples/setup-debian.sh installs
# the tools that run and test it and builds the test guest's initramfs.
#
#   thinhost build examples/qemu-test.hcl -o out/test.img
#   thinhost run out/test.img --check

variable "api_token" {
  type        = string
  default     = "qemu-test-token-not-secret"
  sensitive   = true
  description = "hostd's API token; fixed here so tests and `thinhost ctl` can reach a QEMU host (laptop.hcl lets hostd generate one)"
}

variable "guest_initrd" {
  type        = string
  default     = "guest-initrd.cpio"
  description = "The test guest's initramfs, with modules of the host's kernel; setup-debian.sh builds it (go run ./internal/testguest/mkguest)"
}

variable "test_guest" {
  type        = string
  default     = null
  description = "thinhost's bare test guest (a multiboot kernel, testguest.BuildBare), run in place of the Linux one: it boots in a second where Linux takes minutes under TCG inside TCG"
}

variable "share_password" {
  type        = string
  default     = "thin-test-password"
  sensitive   = true
  description = "The share user's password (-var share_password=...)"
}

variable "api_network" {
  type        = bool
  default     = true
  description = "Serve the API on the host's network too (HTTPS there), so run --forward 8484:8484 reaches it"
}

variable "share_network" {
  type        = bool
  default     = true
  description = "Serve the shares on the host's network too, so run --forward 44445:445 reaches them"
}

variable "hardware" {
  type        = string
  default     = "generic"
  description = "The driver set: generic boots on QEMU's virtio machine and on the emulated laptop (run --machine laptop); the tests use virtio to check that run --usb --check fails without USB drivers"
}

variable "guest_display" {
  type        = string
  default     = "none"
  description = "The test guest's display: none; sdl to draw it on the panel (run --machine laptop shows it); vnc on the host's network, port 5900, with the password thinhost ctl vm guest vnc-password shows"
}

variable "guest_shuts_down" {
  type        = bool
  default     = false
  description = "The bare test guest shuts itself down once booted, and the host powers off with it (on_shutdown = poweroff)"
}

variable "guest_autostart" {
  type        = bool
  default     = true
  description = "Start the test guest when the host is ready"
}

variable "secure_boot" {
  type        = string
  default     = "off"
  description = "The boot chain: off (systemd-boot, unsigned), stock (Debian's signed shim, GRUB and kernel; run --secure-boot boots it with Secure Boot on) or own (systemd-boot and a unified kernel image signed with secure_boot_keys)"
}

variable "secure_boot_keys" {
  type        = string
  default     = null
  description = "With secure_boot = \"own\": the key set's directory (thinhost keys DIR makes one)"
}

boot {
  secure_boot = var.secure_boot
  keys        = var.secure_boot_keys
}

artifact "guest-initrd" {
  # Not needed beside the bare test guest.
  path = var.test_guest == null ? var.guest_initrd : null
}

artifact "test-guest" {
  path = var.test_guest
}

host {
  hostname = "thinhost-test"
  console  = ["ttyS0,115200"]
  # The management API (thinhost ctl): run IMAGE --forward 8484:8484,
  # which needs it on the host's network (by default only loopback, where
  # the guests reach it at 10.0.2.2).
  api_port            = 8484
  api_token           = var.api_token
  api_on_host_network = var.api_network

  # The kernel is the packages block's (Debian's linux-image-amd64), pinned
  # by the lock file like every other package.
  kernel {
    cmdline = "quiet"
    # Drivers by hardware: the set's drivers load for the devices present
    # (generic: QEMU's virtio devices and a laptop's, as run --machine
    # laptop emulates it).
    hardware = var.hardware
  }
}

# The file share: SMB by smbd, for the user "thin". Tests reach it from the
# build machine with `thinhost run IMAGE --forward 44445:445`, which needs
# the host's network; laptop.hcl leaves that off (the guest alone reaches
# its shares, at 10.0.2.2).
file_server {
  user                  = "thin"
  password              = var.share_password
  serve_on_host_network = var.share_network
}

share "files" {
  drive = "Z"
}

share "media" {
  path      = "media"
  read_only = true
  drive     = "M"
}

# A tiny Linux guest that stands in for Windows in tests: the host's own
# kernel and an initramfs that prints "thinhost-guest: ..." lines on its serial
# console (which hostd logs), counts its boots in its disk's first sector,
# and powers off on the ACPI power button. With -var test_guest=... the bare
# test guest does the same in a few KiB, without Linux's minutes of boot.
vm "guest" {
  os       = "linux"
  firmware = "bios"
  memory   = "256MiB"
  cpus     = 1
  kernel   = var.test_guest == null ? "host" : "test-guest"
  initrd   = var.test_guest == null ? "guest-initrd" : null
  cmdline  = var.guest_shuts_down ? "console=ttyS0 quiet panic=-1 thinhost-guest-poweroff" : "console=ttyS0 quiet panic=-1"
  # QEMU's NAT and the host-only link (10.0.3.10 by DHCP), as a Windows
  # guest has them.
  network  = "user"
  display  = var.guest_display
  vnc      = var.guest_display == "vnc" ? "0.0.0.0:5900" : null
  autostart = var.guest_autostart
  # What the host does when the guest shuts itself down, as Windows does
  # from its Start menu: poweroff (Windows guests' default: the appliance)
  # or stay (Linux guests' default).
  on_shutdown = var.guest_shuts_down ? "poweroff" : "stay"
  # The guest powers off at once on the ACPI button once its init runs;
  # while its kernel still boots (over a minute under TCG inside TCG) the
  # press is lost, and hostd stops QEMU after this long.
  shutdown_timeout = "20s"

  disk {
    size = "16MiB"
  }
}

variable "encrypt" {
  type        = bool
  default     = false
  description = "Encrypt the data partition (LUKS2): its passphrase is chosen on the serial console at first boot and asked for at every boot"
}

variable "tpm_unlock" {
  type        = bool
  default     = false
  description = "With encrypt and secure_boot = own: unlock the data partition with the TPM (run --tpm DIR gives the machine one) and a recovery key shown once, instead of a passphrase"
}

variable "data_disk" {
  type        = string
  default     = "boot"
  description = "Where the data partition lives: boot (this image's last partition) or internal (hostd makes it on the one empty internal disk: run --internal-disk with --machine laptop, or an extra virtio disk)"
}

storage {
  image_size  = "2GiB"
  esp_size    = "256MiB"
  system_size = "512MiB"
  encrypt     = var.encrypt
  tpm         = var.tpm_unlock
  data_disk   = var.data_disk
}

# The host's kernel and programs (QEMU, OVMF, swtpm, Samba, e2fsprogs,
# systemd-boot) come from Debian's archive, verified and pinned in the lock file beside
# this profile (thinhost lock refreshes it), not from the build machine.
# Without suites: bookworm, bookworm-updates and bookworm-security, main.
packages {
  # tzdata for the stamp service's time zone.
  extra = ["tzdata"]
}

# A program from a Debian package, run by hostd's supervisor as a user of
# its own (home: /data/services/hello); its output is in hostd's log
# (thinhost ctl logs). Real hosts run syncthing or restic this way.
service "hello" {
  package = "hello"
  command = ["/usr/bin/hello", "--greeting=thinhost-service: hello from a Debian package"]
  restart = "never"
}

# A service that writes into a share: share_user runs it as the share user,
# so what it writes is the user's, as if Windows had written it; hostd
# tells it where each share is (THINHOST_SHARE_FILES). It runs in the
# system image as its root, so date finds the zone file tzdata ships, named
# in files beside the package's own.
service "stamp" {
  package    = "dash"
  command    = ["/bin/dash", "-c", "TZ=Europe/Berlin date '+%Z written by a service' >\"$THINHOST_SHARE_FILES/service-stamp.txt\""]
  files      = ["/usr/bin/date", "/usr/share/zoneinfo/Europe/Berlin"]
  share_user = true
  restart    = "never"
}
