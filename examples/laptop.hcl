# laptop.hcl: the profile of a real 2020s laptop. The host owns the hardware
# (NVMe or SATA disk, USB, the CPU's virtualization) and runs Windows as a
# KVM guest.
#
#   thinhost build examples/laptop.hcl -o laptop.img
#   thinhost flash laptop.img /dev/sdX

variable "hostname" {
  type    = string
  default = "thinhost"
}

variable "windows_iso" {
  type        = string
  default     = "Win11_24H2_English_x64.iso"
  description = "Your Windows 11 ISO, from https://www.microsoft.com/software-download/windows11 (relative to this file)"
}

variable "virtio_win_iso" {
  type        = string
  default     = "virtio-win.iso"
  description = "The virtio-win driver ISO (Fedora's virtio-win-pkg-scripts), for the virtio disk and network during setup"
}

artifact "windows" {
  path = var.windows_iso
}

artifact "virtio-win" {
  path = var.virtio_win_iso
}

host {
  hostname = var.hostname
  # The panel first for people, the serial port last: /dev/console is the
  # last one, where hostd prints its status.
  console = ["tty0", "ttyS0,115200"]

  # The kernel is the packages block's (Debian's linux-image-amd64).
  kernel {
    # The IOMMU on for device passthrough to the Windows guest.
    cmdline = "quiet intel_iommu=on iommu=pt"
    modules = [
      # Storage: NVMe and SATA disks, USB sticks (the image boots from one:
      # the xHCI controller, USB mass storage, SCSI disks).
      "nvme", "ahci", "xhci_pci", "usb_storage", "uas", "sd_mod",
      # Keyboards and touchpads for the console: USB and I2C HID.
      "usbhid", "hid_generic", "i2c_hid_acpi", "hid_multitouch",
      # Wired networks: Intel (e1000e) and Realtek (r8169) Ethernet.
      "e1000e", "r8169",
      # Virtualization: whichever matches the CPU loads; the other reports
      # "not supported" and is skipped.
      "kvm_intel", "kvm_amd", "vhost_net", "tun", "bridge", "vfio_pci",
      # Filesystems: ESP, data partition, system image.
      "vfat", "ext4", "squashfs", "efivarfs",
      # For testing the same profile under QEMU.
      "virtio_pci", "virtio_blk", "virtio_net",
      # The panel for display = "sdl" (Intel and AMD GPUs, QEMU's VGA).
      "i915", "amdgpu", "bochs", "evdev",
    ]
  }
}

# The user's files live here, on the data partition, not in Windows: a
# reinstall or reset of Windows loses none of them. Windows maps them with
# the `net use` lines `thinhost ctl shares` prints (\\10.0.2.2\files).
# The password is generated on first boot; `thinhost ctl shares` shows it.
file_server {
  user = "thin"
}

share "files" {
  drive = "Z"
}

# Windows 11 as the laptop's desktop. Its disk, UEFI variables and TPM
# state live on the data partition (/data/vms/windows); the ISOs are carried
# in the image as raw partitions and attached until Windows boots from its
# disk. After setup: thinhost ctl vm windows snapshot, and from then on
# thinhost ctl vm windows reset brings that fresh install back in seconds.
vm "windows" {
  os            = "windows11"
  memory        = "75%"
  cpus          = "all-but-1"
  firmware      = "uefi-secureboot"
  tpm           = true
  install_media = "windows"
  drivers       = "virtio-win"
  # Full screen on the laptop's panel through KMS/DRM, no X server.
  display = "sdl"
  # A USB fingerprint reader handed to Windows (lsusb shows vendor:product).
  usb              = ["06cb:00bd"]
  shutdown_timeout = "2m"

  disk {
    size = "128GiB"
  }
}

storage {
  image_size  = "16GiB"
  esp_size    = "512MiB"
  system_size = "1GiB"
}

# The host's kernel and programs (QEMU, OVMF, swtpm, Samba, e2fsprogs,
# systemd-boot) come from Debian's archive, verified and pinned in the lock file beside
# this profile (thinhost lock refreshes it), not from the build machine.
# Without suites: bookworm, bookworm-updates and bookworm-security, main.
packages {
}
