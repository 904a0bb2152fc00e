package wire

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
)

// compile builds t's codec; seen holds the codecs being built, so that a
// recursive type refers to its own (filled in before first use).
func compile(t reflect.Type, seen map[reflect.Type]*codec) (*codec, error) {
	if c, ok := seen[t]; ok {
		return c, nil
	}
	if c, ok := codecs.Load(t); ok {
		return c.(*codec), nil
	}
	c := &codec{}
	seen[t] = c
	var err error
	switch t.Kind() {
	case reflect.Bool:
		c.enc, c.dec = encBool, decBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.enc, c.dec = encInt, decInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.enc, c.dec = encUint, decUint
	case reflect.Float32:
		c.enc, c.dec, c.min = encFloat32, decFloat32, 4
	case reflect.Float64:
		c.enc, c.dec, c.min = encFloat64, decFloat64, 8
	case reflect.String:
		c.enc, c.dec = encString, decString
	case reflect.Slice:
		err = compileSlice(c, t, seen)
	case reflect.Array:
		err = compileArray(c, t, seen)
	case reflect.Map:
		err = compileMap(c, t, seen)
	case reflect.Pointer:
		err = compilePointer(c, t, seen)
	case reflect.Struct:
		err = compileStruct(c, t, seen)
	default:
		err = fmt.Errorf("wire: cannot encode %s (kind %s)", t, t.Kind())
	}
	if err != nil {
		delete(seen, t)
		return nil, err
	}
	c.min = max(c.min, 1)
	return c, nil
}

func compileSlice(c *codec, t reflect.Type, seen map[reflect.Type]*codec) error {
	if bulk, ok := bulkCodecs[t.Elem()]; ok {
		c.enc, c.dec = bulk.enc, bulk.dec
		return nil
	}
	ec, err := compile(t.Elem(), seen)
	if err != nil {
		return err
	}
	c.enc = func(e *encoder, v reflect.Value) {
		if v.IsNil() {
			e.uvarint(0)
			return
		}
		n := v.Len()
		e.uvarint(uint64(n) + 1)
		for i := range n {
			ec.enc(e, v.Index(i))
		}
	}
	c.dec = func(d *decoder, v reflect.Value) {
		n, isNil := d.length(ec.min)
		if isNil || d.err != nil {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(t, n, n)
		for i := 0; i < n && d.err == nil; i++ {
			ec.dec(d, s.Index(i))
		}
		v.Set(s)
	}
	return nil
}

func compileArray(c *codec, t reflect.Type, seen map[reflect.Type]*codec) error {
	ec, err := compile(t.Elem(), seen)
	if err != nil {
		return err
	}
	n := t.Len()
	c.min = n * ec.min
	c.enc = func(e *encoder, v reflect.Value) {
		for i := range n {
			ec.enc(e, v.Index(i))
		}
	}
	c.dec = func(d *decoder, v reflect.Value) {
		for i := 0; i < n && d.err == nil; i++ {
			ec.dec(d, v.Index(i))
		}
	}
	return nil
}

func compileMap(c *codec, t reflect.Type, seen map[reflect.Type]*codec) error {
	kc, err := compile(t.Key(), seen)
	if err != nil {
		return err
	}
	vc, err := compile(t.Elem(), seen)
	if err != nil {
		return err
	}
	c.enc = func(e *encoder, v reflect.Value) {
		if v.IsNil() {
			e.uvarint(0)
			return
		}
		e.uvarint(uint64(v.Len()) + 1)
		// Sort by encoded key so that one map has one encoding.
		type entry struct {
			key []byte
			val reflect.Value
		}
		entries := make([]entry, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			ke := encoder{}
			kc.enc(&ke, it.Key())
			entries = append(entries, entry{ke.buf, it.Value()})
		}
		slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		for _, en := range entries {
			e.buf = append(e.buf, en.key...)
			vc.enc(e, en.val)
		}
	}
	c.dec = func(d *decoder, v reflect.Value) {
		n, isNil := d.length(kc.min + vc.min)
		if isNil || d.err != nil {
			v.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(t, n)
		for i := 0; i < n && d.err == nil; i++ {
			k, val := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			kc.dec(d, k)
			vc.dec(d, val)
			m.SetMapIndex(k, val)
		}
		v.Set(m)
	}
	return nil
}

func compilePointer(c *codec, t reflect.Type, seen map[reflect.Type]*codec) error {
	ec, err := compile(t.Elem(), seen)
	if err != nil {
		return err
	}
	c.enc = func(e *encoder, v reflect.Value) {
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return
		}
		e.buf = append(e.buf, 1)
		ec.enc(e, v.Elem())
	}
	c.dec = func(d *decoder, v reflect.Value) {
		switch d.byte() {
		case 0:
			v.SetZero()
		case 1:
			p := reflect.New(t.Elem())
			ec.dec(d, p.Elem())
			v.Set(p)
		default:
			d.fail("bad pointer marker")
		}
	}
	return nil
}

func compileStruct(c *codec, t reflect.Type, seen map[reflect.Type]*codec) error {
	type field struct {
		index int
		c     *codec
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			return fmt.Errorf("wire: cannot encode %s: unexported field %s", t, f.Name)
		}
		fc, err := compile(f.Type, seen)
		if err != nil {
			return fmt.Errorf("%w (field %s.%s)", err, t, f.Name)
		}
		fields = append(fields, field{i, fc})
		c.min += fc.min
	}
	c.enc = func(e *encoder, v reflect.Value) {
		for _, f := range fields {
			f.c.enc(e, v.Field(f.index))
		}
	}
	c.dec = func(d *decoder, v reflect.Value) {
		for _, f := range fields {
			if d.err != nil {
				return
			}
			f.c.dec(d, v.Field(f.index))
		}
	}
	return nil
}

// --- scalars

func encBool(e *encoder, v reflect.Value) {
	b := byte(0)
	if v.Bool() {
		b = 1
	}
	e.buf = append(e.buf, b)
}

func decBool(d *decoder, v reflect.Value) {
	switch d.byte() {
	case 0:
		v.SetBool(false)
	case 1:
		v.SetBool(true)
	default:
		d.fail("bad bool")
	}
}

func encInt(e *encoder, v reflect.Value) { e.varint(v.Int()) }

func decInt(d *decoder, v reflect.Value) {
	x := d.varint()
	if v.OverflowInt(x) {
		d.fail(fmt.Sprintf("%d overflows %s", x, v.Type()))
		return
	}
	v.SetInt(x)
}

func encUint(e *encoder, v reflect.Value) { e.uvarint(v.Uint()) }

func decUint(d *decoder, v reflect.Value) {
	x := d.uvarint()
	if v.OverflowUint(x) {
		d.fail(fmt.Sprintf("%d overflows %s", x, v.Type()))
		return
	}
	v.SetUint(x)
}

func encFloat32(e *encoder, v reflect.Value) { e.u32(float32Bits(v)) }

func decFloat32(d *decoder, v reflect.Value) {
	bits := d.u32()
	if v.Type() == float32Type && v.CanAddr() {
		*v.Addr().Interface().(*float32) = math.Float32frombits(bits)
		return
	}
	v.SetFloat(float64(math.Float32frombits(bits)))
}

func encFloat64(e *encoder, v reflect.Value) { e.u64(math.Float64bits(v.Float())) }

func decFloat64(d *decoder, v reflect.Value) { v.SetFloat(math.Float64frombits(d.u64())) }

func encString(e *encoder, v reflect.Value) {
	s := v.String()
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func decString(d *decoder, v reflect.Value) {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(fmt.Sprintf("string of %d bytes with %d left", n, len(d.buf)))
		return
	}
	v.SetString(string(d.take(int(n))))
}

// float32Bits returns the IEEE bits of a float32-kind value without a
// round trip through float64 where it can (that would quieten a
// signalling NaN).
func float32Bits(v reflect.Value) uint32 {
	if v.Type() == float32Type {
		if v.CanAddr() {
			return math.Float32bits(*v.Addr().Interface().(*float32))
		}
		return math.Float32bits(v.Interface().(float32))
	}
	return math.Float32bits(float32(v.Float()))
}

var float32Type = reflect.TypeFor[float32]()
