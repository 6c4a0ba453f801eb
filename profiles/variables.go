package profiles

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Variable is a declared input of the profile with its final value.
type Variable struct {
	Name        string
	Description string
	Type        cty.Type
	Value       cty.Value
	// Sensitive values are never printed by thinhost.
	Sensitive bool
	DeclRange hcl.Range

	// hasDefault is set when the block has a default, valid or not, so
	// an invalid one is reported once rather than also as unset.
	hasDefault bool
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
}

func (ps *Parser) decodeVariables(blocks []*hcl.Block, opts Options) ([]*Variable, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var vars []*Variable
	byName := map[string]*Variable{}
	noCtx := &hcl.EvalContext{}

	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			rng := b.LabelRanges[0]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
				Detail: "A variable name must start with a letter and contain only letters, digits, '_' and '-'.", Subject: &rng})
			continue
		}
		if prev, dup := byName[name]; dup {
			rng := b.LabelRanges[0]
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is already declared at %s.", name, prev.DeclRange), Subject: &rng})
			continue
		}
		content, d := b.Body.Content(variableSchema)
		diags = append(diags, d...)
		v := &Variable{Name: name, Type: cty.DynamicPseudoType, Value: cty.NullVal(cty.DynamicPseudoType), DeclRange: b.DefRange}
		if attr, ok := content.Attributes["type"]; ok {
			ty, d := typeexpr.TypeConstraint(attr.Expr)
			diags = append(diags, d...)
			if !d.HasErrors() {
				v.Type = ty
			}
		}
		v.Description, _, d = evalString(content.Attributes, "description", noCtx)
		diags = append(diags, d...)
		v.Sensitive, _, d = evalBool(content.Attributes, "sensitive", noCtx)
		diags = append(diags, d...)
		if attr, ok := content.Attributes["default"]; ok {
			v.hasDefault = true
			val, d := attr.Expr.Value(noCtx)
			diags = append(diags, d...)
			if !d.HasErrors() {
				v.Value, d = convertVar(v, val, attr.Expr.Range())
				diags = append(diags, d...)
			}
		}
		byName[name] = v
		vars = append(vars, v)
	}

	diags = append(diags, ps.applyVarFiles(opts.VarFiles, byName)...)
	diags = append(diags, applyVarFlags(opts.Vars, byName)...)

	for _, v := range vars {
		if v.Value.IsNull() && !v.hasDefault {
			rng := v.DeclRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unset variable",
				Detail:  fmt.Sprintf("Variable %q has no default and no value was given: pass -var %s=VALUE or set it in a -var-file.", v.Name, v.Name),
				Subject: &rng})
			continue
		}
		if v.Type != cty.DynamicPseudoType {
			continue
		}
		v.Type = v.Value.Type()
	}
	return vars, diags
}

func convertVar(v *Variable, val cty.Value, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	conv, err := convert.Convert(val, v.Type)
	if err != nil {
		return v.Value, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail:  fmt.Sprintf("Variable %q must be %s: %s.", v.Name, typeexpr.TypeString(v.Type), err),
			Subject: &rng}}
	}
	return conv, nil
}

func (ps *Parser) applyVarFiles(files []string, byName map[string]*Variable) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, fn := range files {
		f, d := ps.p.ParseHCLFile(fn)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		attrs, d := f.Body.JustAttributes()
		diags = append(diags, d...)
		for _, attr := range sortedAttrs(attrs) {
			v, ok := byName[attr.Name]
			if !ok {
				rng := attr.NameRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
					Detail:  fmt.Sprintf("The profile declares no variable %q.%s", attr.Name, didYouMean(attr.Name, varNames(byName))),
					Subject: &rng})
				continue
			}
			val, d := attr.Expr.Value(&hcl.EvalContext{})
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			nv, d := convertVar(v, val, attr.Expr.Range())
			diags = append(diags, d...)
			v.Value = nv
		}
	}
	return diags
}

func applyVarFlags(flags []string, byName map[string]*Variable) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, kv := range flags {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option",
				Detail: fmt.Sprintf("-var %q must have the form NAME=VALUE.", kv)})
			continue
		}
		v, ok := byName[name]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
				Detail: fmt.Sprintf("-var %s: the profile declares no variable %q.%s", kv, name, didYouMean(name, varNames(byName)))})
			continue
		}
		var val cty.Value
		if v.Type == cty.DynamicPseudoType || v.Type.IsPrimitiveType() {
			// Primitive values are taken literally, as terraform does, so
			// paths and passwords need no quoting.
			val = cty.StringVal(raw)
		} else {
			expr, d := hclsyntax.ParseExpression([]byte(raw), "-var "+name, hcl.InitialPos)
			if d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
			var vd hcl.Diagnostics
			val, vd = expr.Value(&hcl.EvalContext{})
			if vd.HasErrors() {
				diags = append(diags, vd...)
				continue
			}
		}
		conv, err := convert.Convert(val, typeOrString(v.Type))
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: fmt.Sprintf("-var %s: variable %q must be %s: %s.", name, name, typeexpr.TypeString(v.Type), err)})
			continue
		}
		v.Value = conv
	}
	return diags
}

func typeOrString(t cty.Type) cty.Type {
	if t == cty.DynamicPseudoType {
		return cty.String
	}
	return t
}

func varNames(m map[string]*Variable) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	var out []*hcl.Attribute
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}
