# Valid guests: no diagnostics.
artifact "kernel" {
  path = "bzImage"
}

artifact "win11" {
  path = "Win11_24H2.iso"
}

artifact "virtio-win" {
  url    = "https://example.org/virtio-win.iso"
  sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

host {
  kernel {
    artifact = "kernel"
  }
}

vm "windows" {
  os            = "windows11"
  memory        = "75%"
  cpus          = "all-but-1"
  tpm           = true
  install_media = "win11"
  drivers       = "virtio-win"
  display       = "sdl"
  usb           = ["046d:c52b", "8087:0A2B"]
  disk {
    size = "128GiB"
  }
  windows {
    language  = "en-US"
    keyboard  = "de-DE;en-US"
    time_zone = "W. Europe Standard Time"
    account   = "anna"
  }
}

vm "legacy" {
  os        = "windows10"
  memory    = "6GiB"
  cpus      = 4
  autostart = false
  display   = "vnc"
  vnc       = "0.0.0.0:5901"
  disk {
    size   = "80GiB"
    format = "raw"
  }
  shutdown_timeout = "3m"
  nested           = true
  sound            = false
}

vm "tiny" {
  os       = "linux"
  firmware = "bios"
  memory   = "256MiB"
  cpus     = 1
  kernel   = "kernel"
  cmdline  = "console=ttyS0"
  network  = "none"
  disk {
    size = "16MiB"
  }
}
