package profiles

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// binaryUnits are the only suffixes a profile size may carry. Sizes of disks
// and partitions are binary by nature (sectors, MiB alignment), so decimal
// units are refused rather than guessed.
var binaryUnits = map[string]int64{
	"":    1,
	"B":   1,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
}

// ambiguousUnits maps decimal or shorthand suffixes to the binary unit a user
// most likely meant, so the diagnostic can say which to write.
var ambiguousUnits = map[string]string{
	"K": "KiB", "KB": "KiB", "k": "KiB", "kB": "KiB", "kb": "KiB",
	"M": "MiB", "MB": "MiB", "m": "MiB", "mb": "MiB", "Mb": "MiB",
	"G": "GiB", "GB": "GiB", "g": "GiB", "gb": "GiB", "Gb": "GiB",
	"T": "TiB", "TB": "TiB", "t": "TiB", "tb": "TiB", "Tb": "TiB",
}

// ParseSize parses a size such as "512MiB", "8GiB" or "1048576" into bytes.
// Decimal units ("8GB", "8G") are refused with an error that names the
// binary unit to use instead.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a size: write a number with a binary unit, such as \"512MiB\" or \"8GiB\"", s)
	}
	mult, ok := binaryUnits[unit]
	if !ok {
		if bin, amb := ambiguousUnits[unit]; amb {
			return 0, fmt.Errorf("%q is ambiguous: %s could mean powers of 1000 or of 1024; thinhost sizes are binary, so write \"%s%s\" (%s × %s bytes)",
				s, unit, num, bin, num, unitBytes(bin))
		}
		return 0, fmt.Errorf("%q has an unknown unit %q: use B, KiB, MiB, GiB or TiB", s, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	v := f * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

func unitBytes(bin string) string {
	return strconv.FormatInt(binaryUnits[bin], 10)
}

// FormatSize renders bytes with the largest binary unit that divides it
// exactly, or with two decimals of the largest unit below it.
func FormatSize(n int64) string {
	units := []string{"TiB", "GiB", "MiB", "KiB"}
	for _, u := range units {
		m := binaryUnits[u]
		if n >= m && n%m == 0 {
			return fmt.Sprintf("%d%s", n/m, u)
		}
	}
	for _, u := range units {
		m := binaryUnits[u]
		if n >= m {
			return fmt.Sprintf("%.2f%s", float64(n)/float64(m), u)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// decodeSize evaluates an optional size attribute. A string goes through
// ParseSize; a whole number is taken as bytes. Missing attributes return def.
func decodeSize(attrs hcl.Attributes, name string, ctx *hcl.EvalContext, def int64) (int64, hcl.Diagnostics) {
	attr, ok := attrs[name]
	if !ok {
		return def, nil
	}
	val, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return def, diags
	}
	rng := attr.Expr.Range()
	if val.IsNull() {
		return def, nil
	}
	switch {
	case val.Type() == cty.String:
		n, err := ParseSize(val.AsString())
		if err != nil {
			return def, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Invalid size",
				Detail:   fmt.Sprintf("%s: %s.", name, err),
				Subject:  &rng,
			}}
		}
		return n, nil
	case val.Type() == cty.Number:
		bf := val.AsBigFloat()
		if !bf.IsInt() || bf.Sign() < 0 {
			break
		}
		n, acc := bf.Int64()
		if acc != big.Exact {
			break
		}
		return n, nil
	}
	return def, hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Incorrect attribute value type",
		Detail:   fmt.Sprintf("%s must be a size such as \"512MiB\" or a whole number of bytes.", name),
		Subject:  &rng,
	}}
}
