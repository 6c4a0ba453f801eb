# A windows block's mistakes, each refused with its line.
artifact "win" {
  path = "Win11_24H2.iso"
}

artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

vm "windows" {
  os            = "windows11"
  tpm           = true
  install_media = "win"
  disk {
    size = "64GiB"
  }
  windows {
    language      = "English"
    keyboard      = "de-DE;"
    time_zone     = "Europe/Berlin"
    account       = "Administrator"
    password      = "hunter2hunter2"
    computer_name = "a-name-far-too-long"
    edition       = "ultimate"
    product_key   = "abc"
  }
}

vm "nomedia" {
  os  = "windows10"
  disk {
    size = "64GiB"
  }
  windows {
    account = "anna"
  }
}

vm "evil" {
  os            = "windows10"
  install_media = "win"
  disk {
    size = "64GiB"
  }
  windows {
    account = "anna & del"
  }
}

vm "linux" {
  os = "linux"
  disk {
    size = "1GiB"
  }
  windows {
    account = "anna"
  }
}
