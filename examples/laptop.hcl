# laptop.hcl: the profile of a real 2020s laptop. The host owns the hardware
# (NVMe or SATA disk, USB, the CPU's virtualization) and runs Windows as a
# KVM guest.
#
#   thinhost build examples/laptop.hcl -o laptop.img
#   thinhost flash laptop.img /dev/sdX

variable "kernel_deb" {
  type        = string
  default     = "kernel/linux-image-amd64.deb"
  description = "Debian linux-image-*-amd64 package (relative to this file)"
}

variable "hostname" {
  type    = string
  default = "thinhost"
}

artifact "kernel" {
  path = var.kernel_deb
}

host {
  hostname = var.hostname
  # The panel first for people, the serial port last: /dev/console is the
  # last one, where hostd prints its status.
  console = ["tty0", "ttyS0,115200"]

  kernel {
    artifact = "kernel"
    # The IOMMU on for device passthrough to the Windows guest.
    cmdline = "quiet intel_iommu=on iommu=pt"
    modules = [
      # Storage: NVMe and SATA disks, USB sticks (the image boots from one).
      "nvme", "ahci", "xhci_pci", "usb_storage", "uas",
      # Virtualization: whichever matches the CPU loads; the other reports
      # "not supported" and is skipped.
      "kvm_intel", "kvm_amd", "vhost_net", "tun", "bridge", "vfio_pci",
      # Filesystems: ESP, data partition, system image.
      "vfat", "ext4", "squashfs", "efivarfs",
      # For testing the same profile under QEMU.
      "virtio_pci", "virtio_blk", "virtio_net",
    ]
  }
}

storage {
  image_size  = "8GiB"
  esp_size    = "512MiB"
  system_size = "1GiB"
}
