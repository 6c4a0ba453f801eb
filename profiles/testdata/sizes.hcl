artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

storage {
  image_size  = "8GB"
  esp_size    = "10MiB"
  system_size = "1.5KiB"
  data_size   = true
}
