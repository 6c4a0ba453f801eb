artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

# The data partition on the laptop's NVMe disk with this serial,
# encrypted and unlocked by the TPM.
storage {
  encrypt          = true
  tpm              = true
  data_disk        = "internal"
  data_disk_serial = "S4EWNX0R123456  "
}

# TPM unlocking needs the own-keys chain (the directory is checked for
# keys at build time).
boot {
  secure_boot = "own"
  keys        = "."
}
