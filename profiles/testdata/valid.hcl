variable "kernel" {
  type    = string
  default = "bzImage"
}

variable "mods" {
  type    = list(string)
  default = ["virtio_blk"]
}

artifact "kernel" {
  path = var.kernel
}

artifact "drivers" {
  url    = "https://example.org/virtio-win.iso"
  sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
}

host {
  hostname = "laptop-1"
  kernel {
    artifact = "kernel"
    cmdline  = "quiet"
    modules  = concat(var.mods, ["ext4", "virtio-net"])
  }
}

storage {
  image_size = "4GiB"
  data_size  = 1073741824
}
