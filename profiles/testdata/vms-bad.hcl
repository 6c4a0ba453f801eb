# Guests with impossible settings: one diagnostic each.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

vm "win" {
  os   = "windows11"
  cpus = 4
  disk {
    size = "128GiB"
  }
}

vm "Bad_Name" {
  os = "linux"
  disk {
    size = "1GiB"
  }
}

vm "small" {
  os       = "windows11"
  tpm      = true
  memory   = "2GiB"
  firmware = "uefi"
  disk {
    size = "32GiB"
  }
}

vm "typos" {
  os            = "windos10"
  memory        = "150%"
  cpus          = "most"
  install_media = "kernal"
  usb           = ["logitech"]
  display       = "gtk"
  disk {
    size   = "1GiB"
    format = "vmdk"
  }
}

vm "mixed" {
  os       = "windows10"
  firmware = "bios"
  initrd   = "kernel"
  disk {
    size = "64GiB"
  }
}

vm "linuxy" {
  os      = "linux"
  cmdline = "console=ttyS0"
  vnc     = "127.0.0.1:5900"
  shutdown_timeout = "forever"
}

vm "win" {
  os = "linux"
  disk {
    size = "1GiB"
  }
}

# VNC: QEMU option syntax in the address, a host name, no password beyond
# loopback, a password VNC cannot use.
vm "vnccomma" {
  os      = "linux"
  display = "vnc"
  vnc     = "127.0.0.1,password=off:5900"
  disk {
    size = "1GiB"
  }
}

vm "vncname" {
  os      = "linux"
  display = "vnc"
  vnc     = "example.org:5900"
  disk {
    size = "1GiB"
  }
}

vm "vncpw" {
  os           = "linux"
  display      = "vnc"
  vnc          = "[::]:5901"
  vnc_password = "much-too-long"
  disk {
    size = "1GiB"
  }
}
