// Package modules loads the image's kernel modules in the booted host:
// depmod's modules.dep graph (loaded in parallel along it), modules.alias
// (coldplug of the devices present, hotplug of those that appear, from
// the kernel's uevents), the kernel command line's module options, the
// builder's packed .ko.zst files, and the kernel's modprobe helper
// (cmd/modprobe). Module names are normalised by internal/kmod alone.
package modules
