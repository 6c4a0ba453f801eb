// Package profiles parses and validates thinhost profiles: HCL files that
// describe a laptop image (artifacts to fetch, the host kernel and settings,
// the disk layout).
//
// The builder calls [Parse] (or [Parser.ParseFile]) to turn a profile into a
// typed, validated [Profile]. Every problem found in one run is returned as
// an hcl.Diagnostic with the narrowest source range available, so
// [Parser.WriteDiagnostics] can print file:line:col with the offending source
// line. Nothing here touches the network or the disk beyond reading the
// profile and its -var-file files.
package profiles
