artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

storage {
  data_disk        = "internal"
  data_disk_serial = "S4EW\nroot"
}
