# packages block mistakes: each gets a diagnostic at its value.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

packages {
  suites          = ["bookworm", "Bookworm Backports", "bookworm"]
  components      = ["main", "non free"]
  extra           = ["syncthing", "Restic", "htop/sid", "syncthing"]
  kernel          = "linux-image-amd64/trixie"
  mirror          = "ftp://deb.debian.org/debian"
  security_mirror = "http://"
}
