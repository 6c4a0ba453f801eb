host {
  kernel {}
}
packages {}

boot {
  secure_boot = "stock"
}

# Debian's signed chain leaves the initramfs unsigned: PCR 7 would not
# tell this system from another.
storage {
  encrypt = true
  tpm     = true
}
