// Package console is the host's text consoles and its panel: the
// consoles hostd writes to (the kernel's console= list), the debug shells
// offered on them (the panel's behind a password), asking a person for a
// secret on every console at once without echo, and the panel itself,
// handed between a guest on it (QEMU's SDL through KMS) and the host's
// console by the host key combination.
package console
