# Driver sets: an unknown set name gets the list and a suggestion; a module
# cannot be both added and excluded; names are checked in both lists. The
# panel's shell password must not be trivially short, nor the page's password.
host {
  shell_password = "short"
  page_password  = "two\nlines"
  kernel {
    hardware        = "laptp"
    modules         = ["nvme", "r8169"]
    exclude_modules = ["r8169", "amdgpu.ko"]
  }
}

packages {
}
