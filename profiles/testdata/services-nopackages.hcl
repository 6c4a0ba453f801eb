# A service needs the host's packages to come from the archive.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

service "hello" {
  package = "hello"
  command = ["/usr/bin/hello"]
}
