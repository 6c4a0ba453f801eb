// Package console is the host's text consoles: asking a person for a
// secret on every console at once, without echo.
package console
