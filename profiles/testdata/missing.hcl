variable "password" {
  sensitive = true
}

storage {
  image_size = "64MiB"
}
