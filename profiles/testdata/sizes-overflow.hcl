# Sizes whose sum overflows 64 bits must not pass the image size check.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

storage {
  image_size  = "0B"
  system_size = "4194303TiB"
}
