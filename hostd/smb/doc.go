// Package smb is the host's file server: smb.conf rendered from the
// profile's file_server block (fuzzed, with goldens, and held to
// smbtorture's suites against this machine's smbd), the share folders,
// Samba's run directories and password database, smbd as a supervised
// service, and what each share holds.
package smb
