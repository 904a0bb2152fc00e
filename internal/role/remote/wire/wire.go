// Package wire is the compact binary encoding of the role messages that
// package remote sends: any Go value built from bools, integers, floats,
// strings, slices, arrays, maps, structs (exported fields) and pointers,
// written field by field in declaration order with no type information.
//
// Both ends must use the same Go types, which the remote handshake
// checks with Fingerprint; in exchange the encoding is small, fast and
// exact:
//
//   - floats are their IEEE-754 bits, little-endian (NaN payloads, −0 and
//     infinities round-trip bit for bit; no decimal text anywhere)
//   - nil and empty slices and maps stay distinct (a nil RefLogProbs means
//     "no KL term", an empty one does not)
//   - []float32, []int32, []bool and []byte are copied in bulk
//   - map entries are written sorted by key, so one value has one encoding
//
// Layout: bool 1 byte; signed integers zig-zag varints; unsigned integers
// varints; float32/float64 4/8 bytes; string varint length + bytes; slice
// and map varint (length+1), 0 meaning nil, then the elements (map: key,
// value); array its elements; pointer 0 (nil) or 1 then the element;
// struct its exported fields.
//
// Decoding never trusts a length: a slice or map header that claims more
// elements than the bytes left could hold is an error, never an
// allocation.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Marshal returns the encoding of v. A pointer is encoded as the value it
// points to (Marshal(&x) equals Marshal(x)), so that Unmarshal(data, &x)
// reads it back.
func Marshal(v any) ([]byte, error) { return Append(nil, v) }

// Append appends the encoding of v to b; see Marshal.
func Append(b []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() || rv.Kind() == reflect.Pointer {
		return nil, fmt.Errorf("wire: cannot encode nil (%T)", v)
	}
	c, err := codecFor(rv.Type())
	if err != nil {
		return nil, err
	}
	if !rv.CanAddr() {
		// Work on an addressable copy, so that float32 fields are read
		// as bits (see float32Bits).
		cp := reflect.New(rv.Type()).Elem()
		cp.Set(rv)
		rv = cp
	}
	e := encoder{buf: b}
	c.enc(&e, rv)
	return e.buf, nil
}

// Unmarshal decodes data, written by Marshal from a value of the type v
// points to (or a pointer to one), into *v. Every byte must be used.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("wire: Unmarshal needs a non-nil pointer, got %T", v)
	}
	elem := rv.Elem()
	c, err := codecFor(elem.Type())
	if err != nil {
		return err
	}
	d := decoder{buf: data}
	c.dec(&d, elem)
	if d.err != nil {
		return fmt.Errorf("wire: decode %s: %w", elem.Type(), d.err)
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("wire: decode %s: %d bytes left over", elem.Type(), len(d.buf))
	}
	return nil
}

// Fingerprint returns a short digest of the layouts of the values'
// types: field names, order and kinds, recursively. Two builds that
// encode these types the same way have the same fingerprint. It fails
// for a type the encoding does not support.
func Fingerprint(values ...any) (string, error) {
	var b strings.Builder
	for _, v := range values {
		t := reflect.TypeOf(v)
		if t == nil {
			return "", errors.New("wire: cannot fingerprint nil")
		}
		if _, err := codecFor(t); err != nil {
			return "", err
		}
		describe(&b, t, map[reflect.Type]bool{})
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8]), nil
}

// describe writes t's layout; named types already being described are
// written by name (recursive types).
func describe(b *strings.Builder, t reflect.Type, open map[reflect.Type]bool) {
	if open[t] {
		b.WriteString(t.String())
		return
	}
	switch t.Kind() {
	case reflect.Slice:
		b.WriteString("[]")
		describe(b, t.Elem(), open)
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		describe(b, t.Elem(), open)
	case reflect.Pointer:
		b.WriteString("*")
		describe(b, t.Elem(), open)
	case reflect.Map:
		b.WriteString("map[")
		describe(b, t.Key(), open)
		b.WriteString("]")
		describe(b, t.Elem(), open)
	case reflect.Struct:
		open[t] = true
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " ")
			describe(b, f.Type, open)
			b.WriteString(";")
		}
		b.WriteString("}")
		delete(open, t)
	default:
		b.WriteString(t.Kind().String())
	}
}

// codec encodes and decodes values of one type.
type codec struct {
	enc func(e *encoder, v reflect.Value)
	dec func(d *decoder, v reflect.Value) // v is settable
	// min is the fewest bytes a value takes (at least 1), so that a
	// length header can be checked against the bytes left before the
	// decoder allocates.
	min int
}

// codecs caches the compiled codec of every type seen (reflect.Type →
// *codec); entries are never removed.
var codecs sync.Map

// codecFor returns t's codec, compiling it on first use.
func codecFor(t reflect.Type) (*codec, error) {
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	c, err := compile(t, map[reflect.Type]*codec{})
	if err != nil {
		return nil, err
	}
	actual, _ := codecs.LoadOrStore(t, c)
	return actual.(*codec), nil
}
