variable "name" {
  type    = number
  default = "host"
}

artifact "kernel" {
  path   = "a"
  url    = "ftp://example.org/b"
  sha256 = "abc"
}

artifact "kernel" {
  path = "c"
}

host {
  hostname = "-bad-"
  console  = ["com1"]
  kernel {
    artifact = "kernal"
    cmdline  = "console=ttyS0 quiet"
    modules  = ["virtio_blk", "ext4.ko"]
  }
  kernel {
    artifact = "kernel"
  }
}

artifact "empty_url" {
  url = ""
}
