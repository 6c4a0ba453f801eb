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

variable "api_token" {
  type        = string
  default     = "qemu-test-token-not-secret"
  sensitive   = true
  description = "hostd's API token; fixed here so tests and `thinhost ctl` can reach a QEMU host (laptop.hcl lets hostd generate one)"
}

artifact "kernel" {
  path = var.kernel_deb
}

host {
  hostname = "thinhost-test"
  console  = ["ttyS0,115200"]
  # The management API (thinhost ctl): run IMAGE --forward 8484:8484.
  api_port  = 8484
  api_token = var.api_token

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
