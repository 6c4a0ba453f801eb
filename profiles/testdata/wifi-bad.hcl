# wifi block mistakes: each gets a diagnostic at its value or label, and
# no passphrase is ever printed.
variable "psk" {
  type      = string
  default   = "short"
  sensitive = true
}

host {
  kernel {}
}

packages {}

storage {
  data_disk = "internal"
}

wifi {
  interface = "wlan0; reboot"
  country   = "Germany"

  network "Home" {
    ssid = "home"
  }

  network "cafe" {
    ssid     = "a ssid much longer than thirty-two bytes"
    psk      = var.psk
    security = "wpa"
    priority = 5000
  }

  network "cafe" {
    ssid = "again"
  }

  network "office" {
    ssid = "Office"
    psk  = "a passphrase long enough"
  }

  network "cafe-open" {
    ssid     = "Cafe"
    security = "open"
    psk      = "a passphrase for nothing"
  }
}
