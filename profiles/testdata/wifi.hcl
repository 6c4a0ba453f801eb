# A wifi block: networks joined in priority order; passphrases from
# sensitive variables, given with -var or a var file.
variable "home_psk" {
  type      = string
  default   = "correct horse battery staple"
  sensitive = true
}

host {
  kernel {}
}

packages {}

wifi {
  country = "DE"

  network "home" {
    ssid     = "Home Network"
    psk      = var.home_psk
    priority = 10
  }

  dynamic "network" {
    for_each = ["office"]
    labels   = [network.value]
    content {
      ssid     = "Office"
      psk      = var.home_psk
      security = "wpa3"
      hidden   = true
    }
  }
}
