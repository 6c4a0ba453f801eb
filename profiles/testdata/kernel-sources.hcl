# Where the kernel comes from: an artifact, or the packages block. Without
# either there is no kernel; modules_dir goes with a bzImage artifact; the
# name "host" is reserved for a guest that boots the host's kernel.
artifact "host" {
  path = "bzImage"
}

host {
  kernel {
    modules_dir = "modules/6.1.0"
  }
}

vm "guest" {
  os     = "linux"
  memory = "256MiB"
  kernel = "host"
  initrd = "missing-initrd"

  disk {
    size = "16MiB"
  }
}
