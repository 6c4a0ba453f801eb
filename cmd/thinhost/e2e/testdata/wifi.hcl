# wifi.hcl: TestWifi's host. Two emulated radios (mac80211_hwsim); the
# host joins Wi-Fi on the first from the wifi block, while the test turns
# the second into an access point with hostapd and serves DHCP on it with
# dnsmasq, typed on the serial console's debug shell.

variable "right_psk" {
  type      = string
  sensitive = true
}

variable "wrong_psk" {
  type      = string
  sensitive = true
}

host {
  hostname            = "thinhost-wifi"
  console             = ["ttyS0,115200"]
  api_port            = 8484
  api_token           = "qemu-test-token-not-secret"
  api_on_host_network = true

  kernel {
    # Every radio starts switched off (airplane mode, as a laptop's
    # platform driver may remember it): hostd loads rfkill with the
    # command line's option, and switches Wi-Fi on for the wifi block.
    cmdline = "quiet rfkill.default_state=0"
    # Two radios on one emulated medium: wlan0 and wlan1.
    modules = ["mac80211_hwsim"]
  }
}

storage {
  image_size  = "1GiB"
  esp_size    = "256MiB"
  system_size = "256MiB"
}

packages {
  extra = ["hostapd", "dnsmasq-base"]
}

# The access point's programs, for the test's shell: the service ships
# dnsmasq's package and hostapd, prints dnsmasq's version and ends.
service "ap-tools" {
  package = "dnsmasq-base"
  command = ["/usr/sbin/dnsmasq", "--version"]
  files   = ["/usr/sbin/hostapd"]
  restart = "never"
}

wifi {
  interface = "wlan0"
  country   = "DE"

  # Tried first, and refused: a wrong passphrase is said, then given up.
  network "wrong" {
    ssid     = "thinhost test"
    psk      = var.wrong_psk
    priority = 10
  }

  network "right" {
    ssid     = "thinhost test"
    psk      = var.right_psk
    priority = 1
  }
}
