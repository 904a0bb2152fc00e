// Package cfgflag gives each configuration field one flag name, written
// once, in a `flag` struct tag. The command binds flags through it (which
// also names the keys of a --config run file, since those are flag names),
// and Validate methods name a field's flag in their messages with Flag, so
// a name is never spelled out twice.
//
// Tag rules, walking a config struct from its root:
//
//   - a tagged field of a struct type that has tagged fields is a group: its
//     tag is a prefix, joined with a dot to the names below it
//     (`flag:"rollout"` above `flag:"batch_size"` is rollout.batch_size);
//   - any other tagged field is a flag (a leaf), whatever its type;
//   - an untagged struct field is walked with no prefix of its own, so a
//     type whose fields span several groups (rl.AdvantageConfig holds
//     algo.advantage.* and rollout.n_samples_per_prompt) carries the full
//     names in its own tags; such a type's Validate can then name its flags
//     relative to itself;
//   - untagged fields of other types are not flags.
//
// Fields are found by address: Name(&cfg, &cfg.Rollout.BatchSize). Passing
// a pointer that is not a field of the root is a programmer error and
// panics, like a bad index.
package cfgflag

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"reflect"
)

// Name returns the flag name of the field that field points to inside the
// struct that root points to, e.g. "rollout.batch_size".
func Name(root, field any) string {
	name, leaf := lookup(root, field)
	if !leaf {
		panic(fmt.Sprintf("cfgflag: the %T field is a group, not a flag", field))
	}
	return name
}

// Flag is Name with the leading "--", the way messages name a flag.
func Flag(root, field any) string { return "--" + Name(root, field) }

// Prefix returns the prefix that the flags inside group (a struct field of
// *root, or root itself) get: "" when no tag above it names one.
func Prefix(root, group any) string {
	if reflect.ValueOf(root).Pointer() == reflect.ValueOf(group).Pointer() && reflect.TypeOf(root) == reflect.TypeOf(group) {
		return ""
	}
	name, _ := lookup(root, group)
	return name
}

// Names returns the flag name of every tagged leaf under root, in field
// order.
func Names(root any) []string {
	var out []string
	walk(structOf(root), "", func(_ reflect.Value, _ reflect.StructField, name string, k kind) bool {
		if k == leaf {
			out = append(out, name)
		}
		return false
	})
	return out
}

// NonFinite returns the flag names of the leaves under root whose value is
// NaN or ±Inf (float fields, and float fields of a leaf that is a struct,
// such as a "lo,hi" pair), for a Validate to report the fields its own
// range checks do not cover.
func NonFinite(root any) []string {
	var out []string
	walk(structOf(root), "", func(v reflect.Value, _ reflect.StructField, name string, k kind) bool {
		if k == leaf && !finite(v) {
			out = append(out, name)
		}
		return false
	})
	return out
}

// Finite reports, as errors naming each flag, the leaves under root that
// are NaN or ±Inf (NonFinite); nil when there are none. A Validate calls
// it last, for the fields its own range checks do not cover.
func Finite(root any) error {
	var errs []error
	for _, name := range NonFinite(root) {
		errs = append(errs, fmt.Errorf("--%s must be a finite number (not NaN or Inf)", name))
	}
	return errors.Join(errs...)
}

// finite reports whether v holds no NaN or infinite float (looking into
// structs, slices and arrays).
func finite(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		return !math.IsNaN(f) && !math.IsInf(f, 0)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !finite(v.Field(i)) {
				return false
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !finite(v.Index(i)) {
				return false
			}
		}
	}
	return true
}

// kind is what a struct field is to the walk.
type kind int

const (
	untagged kind = iota // neither a flag nor a group
	leaf                 // a flag
	group                // a struct whose fields hold flags
)

// lookup finds field inside *root and returns its name and whether it is a
// leaf. It panics when field is not a flag or group of *root.
func lookup(root, field any) (name string, isLeaf bool) {
	fp := reflect.ValueOf(field)
	if fp.Kind() != reflect.Pointer || fp.IsNil() {
		panic(fmt.Sprintf("cfgflag: want a pointer to a config field, got %T", field))
	}
	addr, typ := fp.Pointer(), fp.Type().Elem()
	var found *reflect.StructField
	var k kind
	walk(structOf(root), "", func(v reflect.Value, f reflect.StructField, n string, fk kind) bool {
		if v.Addr().Pointer() != addr || f.Type != typ {
			return false
		}
		found, name, k = &f, n, fk
		return true
	})
	switch {
	case found == nil:
		panic(fmt.Sprintf("cfgflag: the %T is not a field of the %T", field, root))
	case k == untagged:
		panic(fmt.Sprintf("cfgflag: field %s (%s) of the %T has no flag tag", found.Name, typ, root))
	}
	return name, k == leaf
}

func structOf(root any) reflect.Value {
	v := reflect.ValueOf(root)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("cfgflag: want a pointer to a config struct, got %T", root))
	}
	return v.Elem()
}

// walk calls visit for every exported field under v, depth first in field
// order, with its full name and kind, until visit returns true; it
// reports whether one did.
func walk(v reflect.Value, prefix string, visit func(reflect.Value, reflect.StructField, string, kind) bool) bool {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, tagged := f.Tag.Lookup("flag")
		name, k := prefix, untagged
		switch {
		case f.Type.Kind() == reflect.Struct && hasTags(f.Type):
			k = group
		case tagged:
			k = leaf
		}
		if tagged {
			name = join(prefix, tag)
		}
		if visit(v.Field(i), f, name, k) {
			return true
		}
		if k == group && walk(v.Field(i), name, visit) {
			return true
		}
	}
	return false
}

// hasTags reports whether struct type t has a tagged field, directly or
// inside an untagged struct field.
func hasTags(t reflect.Type) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if _, tagged := f.Tag.Lookup("flag"); tagged {
			return true
		}
		if f.Type.Kind() == reflect.Struct && hasTags(f.Type) {
			return true
		}
	}
	return false
}

func join(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + "." + name
}

// Binder binds the tagged fields of one config to a flag set: each flag's
// name comes from the tags, its default from the field's current value.
type Binder struct {
	fs   *flag.FlagSet
	root any
}

// NewBinder returns a Binder for the config that root points to.
func NewBinder(fs *flag.FlagSet, root any) *Binder {
	structOf(root)
	return &Binder{fs: fs, root: root}
}

// Var binds the field that field points to, by its type: string, bool,
// int, uint64, float64, or a type whose pointer is a flag.Value (typed
// enums). It panics on other types (use Value).
func (b *Binder) Var(field any, usage string) {
	name := Name(b.root, field)
	switch p := field.(type) {
	case *string:
		b.fs.StringVar(p, name, *p, usage)
	case *bool:
		b.fs.BoolVar(p, name, *p, usage)
	case *int:
		b.fs.IntVar(p, name, *p, usage)
	case *uint64:
		b.fs.Uint64Var(p, name, *p, usage)
	case *float64:
		b.fs.Float64Var(p, name, *p, usage)
	case flag.Value:
		b.fs.Var(p, name, usage)
	default:
		panic(fmt.Sprintf("cfgflag: --%s: no flag for a %T; bind it with Value", name, field))
	}
}

// Value binds v, a flag.Value that writes the field that field points to
// (for types that are not themselves flag values: pairs, lists), under the
// field's name.
func (b *Binder) Value(field any, v flag.Value, usage string) {
	b.fs.Var(v, Name(b.root, field), usage)
}

// Under binds v, a flag that sets several fields of group at once (for
// example both clip bounds), as name inside group's prefix: Under(&c.Actor,
// "eps_clip", …) is --actor.eps_clip.
func (b *Binder) Under(group any, name string, v flag.Value, usage string) {
	b.fs.Var(v, join(Prefix(b.root, group), name), usage)
}

// Unbound returns the tagged flags of the config that are not in the flag
// set, for a test that every field with a name can be set.
func (b *Binder) Unbound() []string {
	var out []string
	for _, n := range Names(b.root) {
		if b.fs.Lookup(n) == nil {
			out = append(out, n)
		}
	}
	return out
}
