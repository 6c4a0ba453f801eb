package profiles

import (
	"fmt"
	"sort"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// attrDiag is a diagnostic pointing at an attribute's value.
func attrDiag(attr *hcl.Attribute, summary, detail string) *hcl.Diagnostic {
	rng := attr.Expr.Range()
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng}
}

// evalAs evaluates attr and converts it to ty, reporting a type error at the
// expression. The attribute is nil when absent or null: as in Terraform, an
// attribute set to null (var.x == "" ? null : "y") is one left unset.
func evalAs(attrs hcl.Attributes, name string, ty cty.Type, ctx *hcl.EvalContext) (cty.Value, *hcl.Attribute, hcl.Diagnostics) {
	attr, present := attrs[name]
	if !present {
		return cty.NullVal(ty), nil, nil
	}
	val, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NullVal(ty), attr, diags
	}
	if val.IsNull() {
		return cty.NullVal(ty), nil, nil
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		return cty.NullVal(ty), attr, hcl.Diagnostics{attrDiag(attr, "Incorrect attribute value type",
			fmt.Sprintf("%s must be %s: %s.", name, typeName(ty), err))}
	}
	if !conv.IsWhollyKnown() {
		return cty.NullVal(ty), attr, hcl.Diagnostics{attrDiag(attr, "Unknown value",
			fmt.Sprintf("%s must be known when the profile is read.", name))}
	}
	return conv, attr, nil
}

func typeName(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Bool:
		return "true or false"
	case ty == cty.Number:
		return "a number"
	case ty.Equals(cty.List(cty.String)):
		return "a list of strings"
	}
	return ty.FriendlyName()
}

func evalString(attrs hcl.Attributes, name string, ctx *hcl.EvalContext) (string, *hcl.Attribute, hcl.Diagnostics) {
	v, attr, diags := evalAs(attrs, name, cty.String, ctx)
	if v.IsNull() {
		return "", attr, diags
	}
	return v.AsString(), attr, diags
}

func evalBool(attrs hcl.Attributes, name string, ctx *hcl.EvalContext) (bool, *hcl.Attribute, hcl.Diagnostics) {
	v, attr, diags := evalAs(attrs, name, cty.Bool, ctx)
	if v.IsNull() {
		return false, attr, diags
	}
	return v.True(), attr, diags
}

func evalStringList(attrs hcl.Attributes, name string, ctx *hcl.EvalContext) ([]string, *hcl.Attribute, hcl.Diagnostics) {
	v, attr, diags := evalAs(attrs, name, cty.List(cty.String), ctx)
	if v.IsNull() {
		return nil, attr, diags
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			return nil, attr, append(diags, attrDiag(attr, "Incorrect attribute value type",
				fmt.Sprintf("%s must not contain null.", name)))
		}
		out = append(out, e.AsString())
	}
	return out, attr, diags
}

// didYouMean returns " Did you mean "x"?" for the closest candidate, or "".
func didYouMean(got string, candidates []string) string {
	best, bestDist := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein.Distance(got, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// evalIntIn reads a whole-number attribute within [lo, hi]: def when it
// is absent or wrong, with summary and detail as the diagnostic for a
// value out of range or not whole.
func evalIntIn(attrs hcl.Attributes, name string, def, lo, hi int64, ctx *hcl.EvalContext, summary, detail string) (int, hcl.Diagnostics) {
	v, attr, diags := evalAs(attrs, name, cty.Number, ctx)
	if attr == nil || diags.HasErrors() {
		return int(def), diags
	}
	bf := v.AsBigFloat()
	n, _ := bf.Int64()
	if !bf.IsInt() || n < lo || n > hi {
		return int(def), append(diags, attrDiag(attr, summary, detail))
	}
	return int(n), diags
}
