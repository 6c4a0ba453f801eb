package qemu

import "strings"

// SplitOpts reads a QEMU option list the way QEMU's option parser does
// (util/qemu-option.c): each item is "key=value", where a doubled comma
// in the value stands for a comma; a first item with no '=' before its
// first comma is the option's implied value (key ""); a later one is a
// flag (its value "on"). Tests use it to check that no value starts an
// option of its own.
func SplitOpts(s string) (keys, values []string) {
	for first := true; ; first = false {
		n := strings.IndexAny(s, "=,")
		var key string
		if n >= 0 && s[n] == '=' {
			key, s = s[:n], s[n+1:]
		} else if !first {
			if n < 0 {
				n = len(s)
			}
			keys, values = append(keys, s[:n]), append(values, "on")
			if n == len(s) {
				return keys, values
			}
			s = s[n+1:]
			continue
		}
		// The value runs to the first comma that is not doubled.
		var v strings.Builder
		i := 0
		for ; i < len(s); i++ {
			if s[i] == ',' {
				if i+1 < len(s) && s[i+1] == ',' {
					v.WriteByte(',')
					i++
					continue
				}
				break
			}
			v.WriteByte(s[i])
		}
		keys, values = append(keys, key), append(values, v.String())
		if i >= len(s) {
			return keys, values
		}
		s = s[i+1:]
	}
}
