# laptop.hcl: the profile of a real 2020s laptop. The host owns the hardware
# (NVMe or SATA disk, USB, the CPU's virtualization) and runs Windows as a
# KVM guest.
#
#   thinhost build examples/laptop.hcl -o laptop.img
#   thinhost flash laptop.img /dev/sdX

variable "hostname" {
  type    = string
  default = "thinhost"
}

variable "windows_iso" {
  type        = string
  default     = "Win11_24H2_English_x64.iso"
  description = "Your Windows 11 ISO, from https://www.microsoft.com/software-download/windows11 (relative to this file)"
}

variable "virtio_win_iso" {
  type        = string
  default     = "virtio-win.iso"
  description = "The virtio-win driver ISO (Fedora's virtio-win-pkg-scripts), for the virtio disk and network during setup"
}

variable "windows_language" {
  type        = string
  default     = "en-US"
  description = "Windows' display language: the language of your Windows ISO (setup stops when they differ)"
}

variable "windows_keyboard" {
  type        = string
  default     = "en-US"
  description = "Keyboard layouts, ';'-separated: tags such as \"de-DE\" or pairs such as \"0407:00000407\""
}

variable "windows_time_zone" {
  type        = string
  default     = "UTC"
  description = "Windows' time zone, as `tzutil /l` lists it (\"W. Europe Standard Time\")"
}

variable "windows_account" {
  type        = string
  default     = "user"
  description = "The local account Windows setup creates (an administrator)"
}

variable "shell_password" {
  type        = string
  default     = ""
  sensitive   = true
  description = "The password the host's debug shell asks for on the laptop's screen (-var shell_password=...); empty: no shell there, only on a serial console"
}

variable "page_password" {
  type        = string
  default     = null
  sensitive   = true
  description = "The password of the host's page (http://10.0.2.2:8484/ from Windows; -var page_password=...); unset: only the API token logs in"
}

variable "tpm_unlock" {
  type        = bool
  default     = false
  description = "Unlock the encrypted data partition with the laptop's TPM (PCR 7) instead of a passphrase; a recovery key is shown once at first boot. Needs -var secure_boot=own (run --tpm DIR gives the emulated laptop a TPM)"
}

variable "secure_boot" {
  type        = string
  default     = "stock"
  description = "The boot chain: stock (Debian's signed shim, GRUB and kernel: boots with the laptop's Microsoft keys) or own (your keys, enrolled once in Setup Mode: the initramfs and command line are signed too)"
}

variable "secure_boot_keys" {
  type        = string
  default     = null
  description = "With secure_boot = own: the key set's directory (thinhost keys DIR makes one)"
}

boot {
  secure_boot = var.secure_boot
  keys        = var.secure_boot_keys
}

variable "data_disk" {
  type        = string
  default     = "boot"
  description = "Where the user's files and Windows' disk live: boot (the stick) or internal (the laptop's NVMe, which must be empty: hostd never writes over what is there)"
}

variable "data_disk_serial" {
  type        = string
  default     = null
  description = "With data_disk = internal: the serial of the one internal disk to use (cat /sys/block/nvme0n1/device/serial)"
}

variable "encrypt_data" {
  type        = bool
  default     = true
  description = "Encrypt the data partition (LUKS2): a laptop can be lost; its passphrase is chosen on the screen at first boot and typed at every boot"
}

variable "kernel_package" {
  type        = string
  default     = "linux-image-amd64/bookworm-backports"
  description = "The host's kernel package: bookworm-backports' 6.12; thinhost's tests boot bookworm's 6.1 (linux-image-amd64) on the emulated laptop, where 6.12 panics under QEMU's TCG"
}

variable "test_guest" {
  type        = string
  default     = null
  description = "For thinhost's own tests only: a kernel booted in place of Windows (thinhost's bare test guest on the emulated laptop); unset on a real laptop"
}

artifact "test-guest" {
  path = var.test_guest
}

artifact "windows" {
  path = var.windows_iso
}

artifact "virtio-win" {
  path = var.virtio_win_iso
}

host {
  hostname = var.hostname
  # The panel first for people, the serial port last: /dev/console is the
  # last one, where hostd prints its status.
  console = ["tty0", "ttyS0,115200"]
  # Enter on the screen offers the host's debug shell only with this
  # password, and never while Windows has the screen (its keyboard is then
  # Windows' alone, Ctrl+Alt+Del included).
  shell_password = var.shell_password
  # The host's page, which Windows reaches at http://10.0.2.2:8484/ (a
  # shortcut is on the THINHOST drive), logs in with this password.
  page_password = var.page_password

  # The kernel is the packages block's: bookworm-backports' 6.12 (current
  # Intel and AMD graphics with the xe driver, current Wi-Fi).
  kernel {
    # The IOMMU on for device passthrough to the Windows guest.
    cmdline = "quiet intel_iommu=on iommu=pt"
    # The laptop driver set: storage (NVMe, SATA, USB sticks), keyboards
    # and touchpads (USB and I2C HID), Intel and AMD GPUs, sound (HD Audio
    # and SOF), Wi-Fi, Ethernet, battery, lid and backlight, KVM. Drivers
    # load for the devices the laptop has; GPUs, sound and Wi-Fi load from
    # the system image, with the firmware the packages below ship.
    hardware = "laptop"
    # Add drivers with modules = [...], drop some with exclude_modules.
  }
}

# The user's files live here, on the data partition, not in Windows: a
# reinstall or reset of Windows loses none of them. Windows maps them with
# the `net use` lines `thinhost ctl shares` prints (\\10.0.2.2\files).
# The password is generated on first boot; `thinhost ctl shares` shows it.
file_server {
  user = "thin"
}

share "files" {
  drive = "Z"
}

# Windows 11 as the laptop's desktop. Its disk, UEFI variables and TPM
# state live on the data partition (/data/vms/windows); the ISOs are carried
# in the image as raw partitions and attached until Windows boots from its
# disk. After setup: thinhost ctl vm windows snapshot, and from then on
# thinhost ctl vm windows reset brings that fresh install back in seconds.
#
# thinhost's own tests boot their test guest here in place of Windows
# (-var test_guest=...): the lines that read var.test_guest. On a laptop
# test_guest is unset and they are Windows 11's.
vm "windows" {
  os            = var.test_guest == null ? "windows11" : "linux"
  memory        = "75%"
  cpus          = "all-but-1"
  firmware      = var.test_guest == null ? "uefi-secureboot" : "bios"
  tpm           = var.test_guest == null
  install_media = var.test_guest == null ? "windows" : null
  drivers       = var.test_guest == null ? "virtio-win" : null
  kernel        = var.test_guest == null ? null : "test-guest"
  # Full screen on the laptop's panel through KMS/DRM, no X server; the
  # keyboard is Windows' while it draws (Ctrl+Alt+Del included).
  display = "sdl"
  # A USB fingerprint reader handed to Windows (lsusb shows vendor:product).
  usb              = ["06cb:00bd"]
  # USB devices plugged in while the host runs go to Windows too (never
  # the stick the host booted from, nor a hub); unplugged, they go away.
  usb_hotplug      = true
  shutdown_timeout = "2m"

  disk {
    size = "128GiB"
  }

  # An unattended install: setup is told all this instead of asking. The
  # account's password is made by the host for setup alone (thinhost ctl vm
  # windows setup-password); Windows asks you for your own at the first
  # desktop. `thinhost vm drive examples/laptop.hcl -o DIR` shows the
  # answer file. (A dynamic block: the test guest is Linux and has none.)
  dynamic "windows" {
    for_each = var.test_guest == null ? ["windows"] : []
    content {
      language  = var.windows_language
      keyboard  = var.windows_keyboard
      time_zone = var.windows_time_zone
      account   = var.windows_account
      edition   = "pro"
    }
  }
}

variable "wifi_ssid" {
  type        = string
  default     = null
  description = "Your Wi-Fi network's name (-var wifi_ssid=...); unset: join networks later with thinhost ctl wifi connect"
}

variable "wifi_psk" {
  type        = string
  default     = null
  sensitive   = true
  description = "Its passphrase (-var wifi_psk=... or a var file). It never enters the boot files: it waits on the empty data partition until the first boot takes it"
}

# Wi-Fi: the host joins it (Debian's wpa_supplicant); Windows reaches the
# network through QEMU's NAT whatever link the host has. thinhost ctl wifi
# shows the link, scans, and joins more networks.
wifi {
  dynamic "network" {
    for_each = var.wifi_ssid == null ? [] : ["home"]
    labels   = [network.value]
    content {
      ssid = var.wifi_ssid
      psk  = var.wifi_psk
    }
  }
}

storage {
  image_size  = "16GiB"
  esp_size    = "512MiB"
  system_size = "1GiB"
  # The user's files and Windows' disk encrypted (LUKS2): the first boot
  # asks for a passphrase on the screen, every boot after it asks again
  # (-var encrypt_data=false: none).
  encrypt = var.encrypt_data
  tpm     = var.tpm_unlock
  # -var data_disk=internal: on the laptop's own (empty) disk, much faster
  # than a USB stick.
  data_disk        = var.data_disk
  data_disk_serial = var.data_disk_serial
}

# The host's kernel and programs (QEMU, OVMF, swtpm, Samba, e2fsprogs,
# systemd-boot) come from Debian's archive, verified and pinned in the lock
# file beside this profile (thinhost lock refreshes it), not from the build
# machine. The firmware packages are in the non-free-firmware component;
# only the firmware files the shipped drivers name go into the image, and
# the CPU microcode goes into an early initrd the kernel applies first.
packages {
  suites     = ["bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports"]
  components = ["main", "non-free-firmware"]
  kernel     = var.kernel_package
  extra = [
    "firmware-intel-graphics/bookworm-backports", # Intel graphics (i915, xe)
    "firmware-misc-nonfree/bookworm-backports",   # Tigon Ethernet, and more
    "firmware-mediatek/bookworm-backports",       # MediaTek Wi-Fi and Bluetooth
    "firmware-amd-graphics/bookworm-backports",   # AMD graphics
    "firmware-iwlwifi/bookworm-backports",        # Intel Wi-Fi and Bluetooth
    "firmware-realtek/bookworm-backports",        # Realtek Ethernet, Wi-Fi and Bluetooth
    "firmware-atheros/bookworm-backports",        # Qualcomm Wi-Fi
    "firmware-sof-signed",                        # Intel and AMD audio DSPs
    "wireless-regdb",                             # Wi-Fi regulatory rules
    # Mesa 25 for Windows' screen on the panel: bookworm's Mesa 22 predates
    # the GPUs of laptops sold since 2023 (Intel Meteor Lake and later, on
    # the xe driver; AMD's RDNA 3 and 3.5).
    "libgl1-mesa-dri/bookworm-backports",
    "libegl-mesa0/bookworm-backports",
    "libgbm1/bookworm-backports",
    "intel-microcode",
    "amd64-microcode",
  ]
}
