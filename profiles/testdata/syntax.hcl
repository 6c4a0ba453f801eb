host {
  hostname = "a"
  kernel {
    artifact = 
  }
