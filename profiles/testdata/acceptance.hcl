# An unknown block, a wrong type and a URL artifact without sha256.
artifact "kernel" {
  url = "https://example.org/linux-image.deb"
}

host {
  hostname = ["not", "a", "string"]
  kernel {
    artifact = "kernel"
  }
}

network {
  dhcp = true
}
