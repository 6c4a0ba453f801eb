# Secure Boot chains: an unknown one, one not built yet, and a kernel
# artifact the signed chain cannot boot.
host {
  kernel {
    artifact = "kernel"
  }
}

artifact "kernel" {
  path = "vmlinuz.deb"
}

boot {
  secure_boot = "stock"
}
