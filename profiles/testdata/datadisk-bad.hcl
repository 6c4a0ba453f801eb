artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

# A serial without an internal data disk; the TPM without encryption.
storage {
  data_disk_serial = "S4EWNX0R123456"
  tpm              = true
}
