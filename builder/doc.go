// Package builder turns a parsed profile into a bootable disk image: it
// resolves the profile's artifacts (downloads are checksummed and cached),
// unpacks the kernel, computes the module closure, builds the initramfs
// with hostd as its uinit, and writes the GPT/UEFI disk.
//
// The CLI calls [Build]. Phases live in their own files: fetch.go (artifact
// cache), kernel.go (Debian package or bzImage), hostfiles.go and dpkg.go
// (the system image's programs, libraries and their Debian packages),
// build.go (the pipeline). The builder writes nothing but the output image,
// its manifest beside it (IMAGE.manifest.json), the cache and a temporary
// directory it removes.
package builder
