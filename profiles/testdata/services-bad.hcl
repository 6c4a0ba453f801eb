# service block mistakes: each gets a diagnostic at its value or label.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

service "sync" {
  package     = "syncthing"
  command     = ["/usr/bin/syncthing", "serve", "--no-browser"]
  environment = { STNODEFAULTFOLDER = "1" }
}

service "smbd" {
  package = "samba"
  command = ["/usr/sbin/smbd"]
}

service "sync" {
  package = "syncthing"
  command = ["/usr/bin/syncthing"]
}

service "backup" {
  package     = "Restic"
  command     = ["restic", "backup"]
  environment = { "BAD NAME" = "x" }
  restart     = "alway"
}

service "empty" {
  package = "hello"
  command = []
}

service "writer" {
  package    = "dash"
  command    = ["/usr/bin/dash"]
  files      = ["usr/share/x", "/usr/../etc", "/"]
  share_user = true
}

packages {
}
