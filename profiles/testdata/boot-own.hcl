host {
  kernel {}
}
packages {}

boot {
  secure_boot = "own"
}
