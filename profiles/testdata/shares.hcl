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
