# qemu-test.hcl: a thinhost image for QEMU, built from what a Debian 12
# build machine has. examples/setup-debian.sh installs the tools and puts
# Debian's kernel package where kernel_deb points.
#
#   thinhost build examples/qemu-test.hcl -o out/test.img
#   thinhost run out/test.img --check

variable "kernel_deb" {
  type        = string
  default     = "kernel/linux-image-amd64.deb"
  description = "Debian linux-image-*-amd64 package (relative to this file); setup-debian.sh fetches it with apt-get download"
}

artifact "kernel" {
  path = var.kernel_deb
}

host {
  hostname = "thinhost-test"
  console  = ["ttyS0,115200"]

  kernel {
    artifact = "kernel"
    cmdline  = "quiet"
    modules = [
      # QEMU's virtio devices: disk, network, entropy.
      "virtio_pci", "virtio_blk", "virtio_net", "virtio_rng",
      # Filesystems of the image.
      "vfat", "ext4", "squashfs",
    ]
  }
}

storage {
  image_size  = "2GiB"
  esp_size    = "256MiB"
  system_size = "512MiB"
}
