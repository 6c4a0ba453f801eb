host {
  kernel {}
}
packages {}

boot {
  secure_boot = "off"
  keys        = "testdata"
}
