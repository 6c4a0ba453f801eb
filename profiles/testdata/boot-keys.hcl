host {
  kernel {}
}
packages {}

boot {
  secure_boot = "own"
  keys        = "no-such-keys"
}
