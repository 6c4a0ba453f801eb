# Shares: valid ones, then one mistake each.
artifact "kernel" {
  path = "bzImage"
}

host {
  kernel {
    artifact = "kernel"
  }
}

file_server {
  user     = "root"
  password = "short"
}

share "files" {
  drive = "z"
}

share "media" {
  path      = "media/library"
  read_only = true
  drive     = "Y:"
}

share "etc" {
  path = "../../etc"
}

share "abs" {
  path = "/etc"
}

share "Files" {
  path = "other"
}

share "again" {
  path  = "files"
  drive = "Z"
}

share "sys" {
  drive = "C"
}

share "homes" {
}

# smb.conf syntax in a path: a root command on connect, a share over state.
share "inject" {
  path = "x\n  root preexec = /bin/sh -c id\n[IPC$]\n  path = /data/state"
}

share "percent" {
  path = "home/%U"
}

share "nul" {
  path = "a\u0000b"
}

share "dotted" {
  path = "photos/.hidden"
}

share "unicode" {
  path = "Fotos/Übersicht 2024"
}
