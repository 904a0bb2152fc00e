package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name  string
	Score float64
	Bits  float32
}

type named []float32

type sample struct {
	B        bool
	I        int
	I8       int8
	I64      int64
	U        uint64
	U16      uint16
	F32      float32
	F64      float64
	S        string
	D        time.Duration
	Raw      json.RawMessage
	Rows     [][]float32
	Named    named
	Toks     [][]int32
	Masks    [][]bool
	Ints     []int
	Strs     []string
	Arr      [3]int16
	M        map[string]float64
	P        *inner
	Nested   []inner
	NilRows  [][]float32
	Empty    []float32
	EmptyMap map[string]float64
}

func full() sample {
	return sample{
		B: true, I: -7, I8: -128, I64: math.MinInt64, U: math.MaxUint64, U16: 65535,
		F32: math.Float32frombits(0x7fa00001), // a signalling NaN with a payload
		F64: math.Copysign(0, -1), S: "héllo\x00", D: 90 * time.Second,
		Raw:   json.RawMessage(`{"a":1}`),
		Rows:  [][]float32{{1.5, float32(math.Inf(-1))}, nil, {}},
		Named: named{3.25},
		Toks:  [][]int32{{1, -2, math.MaxInt32}}, Masks: [][]bool{{true, false, true}},
		Ints: []int{0, -1, 1 << 40}, Strs: []string{"", "x"}, Arr: [3]int16{-1, 0, 1},
		M:        map[string]float64{"b": 2, "a": math.NaN(), "c": -0.5},
		P:        &inner{Name: "p", Score: 1e300, Bits: -1e-30},
		Nested:   []inner{{Name: "n"}},
		Empty:    []float32{},
		EmptyMap: map[string]float64{},
	}
}

func TestMarshal_RoundTrip(t *testing.T) {
	in := full()
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	// NaN ≠ NaN: compare the map's NaN by bits, then the rest deeply.
	if math.Float64bits(out.M["a"]) != math.Float64bits(in.M["a"]) {
		t.Fatalf("NaN map value: %x", math.Float64bits(out.M["a"]))
	}
	out.M["a"], in.M["a"] = 0, 0
	if math.Float32bits(out.F32) != 0x7fa00001 {
		t.Fatalf("signalling NaN came back as %#x", math.Float32bits(out.F32))
	}
	if math.Float64bits(out.F64) != math.Float64bits(in.F64) {
		t.Fatal("−0 lost its sign")
	}
	out.F32, in.F32 = 0, 0
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip differs:\n in %#v\nout %#v", in, out)
	}
	if out.Empty == nil || out.EmptyMap == nil || out.Rows[1] != nil || out.Rows[2] == nil || out.NilRows != nil {
		t.Fatal("nil and empty were not kept apart")
	}
}

func TestMarshal_Deterministic(t *testing.T) {
	a, _ := Marshal(full())
	for range 20 {
		b, _ := Marshal(full())
		if !bytes.Equal(a, b) {
			t.Fatal("one value has two encodings (map order?)")
		}
	}
}

func TestMarshal_Pointer(t *testing.T) {
	in := full()
	a, _ := Marshal(in)
	b, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Marshal(&x) differs from Marshal(x)")
	}
	var nilp *sample
	if _, err := Marshal(nilp); err == nil {
		t.Fatal("nil pointer encoded")
	}
}

func TestUnmarshal_Corrupt(t *testing.T) {
	b, _ := Marshal(full())
	// Every strict prefix is refused, never a panic.
	for n := range len(b) {
		var out sample
		if err := Unmarshal(b[:n], &out); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(b))
		}
	}
	var out sample
	if err := Unmarshal(append(b, 0), &out); err == nil || !strings.Contains(err.Error(), "left over") {
		t.Fatalf("trailing byte: %v", err)
	}
	// A huge length must not allocate.
	var rows [][]float32
	if err := Unmarshal([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, &rows); err == nil {
		t.Fatal("huge length accepted")
	}
	// Nor may a length whose elements cannot fit in the bytes left: ten
	// pairs of float64 need 160 bytes, not 20.
	var pairs []struct{ A, B float64 }
	hostile := append([]byte{11}, make([]byte, 20)...)
	if err := Unmarshal(hostile, &pairs); err == nil || !strings.Contains(err.Error(), "length 10 with 20 bytes left") {
		t.Fatalf("ten pairs in 20 bytes: %v", err)
	}
	var small struct{ X int8 }
	if err := Unmarshal([]byte{0x80, 0x04}, &small); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("overflow: %v", err)
	}
	// Flipping bytes may decode to other values but must never panic.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0xa5
		_ = Unmarshal(c, &out)
	}
}

func TestMarshal_Unsupported(t *testing.T) {
	for _, v := range []any{
		struct{ F func() }{},
		struct{ C chan int }{},
		struct{ I any }{},
		struct{ hidden int }{},
		nil,
	} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("%T encoded", v)
		}
	}
	if err := Unmarshal(nil, sample{}); err == nil {
		t.Error("Unmarshal into a non-pointer")
	}
}

type recursive struct {
	V    int
	Next *recursive
	Kids []recursive
}

func TestMarshal_Recursive(t *testing.T) {
	in := recursive{V: 1, Next: &recursive{V: 2}, Kids: []recursive{{V: 3, Next: &recursive{V: 4}}}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out recursive
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%+v", out)
	}
	if _, err := Fingerprint(in); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	type a struct {
		X int
		Y []float32
	}
	type b struct {
		X int
		Y []float64 // other element type
	}
	type c struct {
		Y []float32 // other order
		X int
	}
	fa, err := Fingerprint(a{})
	if err != nil {
		t.Fatal(err)
	}
	fa2, _ := Fingerprint(a{})
	fb, _ := Fingerprint(b{})
	fc, _ := Fingerprint(c{})
	if fa != fa2 || fa == fb || fa == fc || fb == fc {
		t.Fatalf("fingerprints a=%s a'=%s b=%s c=%s", fa, fa2, fb, fc)
	}
	if _, err := Fingerprint(struct{ F func() }{}); err == nil {
		t.Fatal("unsupported type fingerprinted")
	}
}

func BenchmarkMarshal_PerToken(b *testing.B) {
	rows := make([][]float32, 32)
	for i := range rows {
		rows[i] = make([]float32, 256)
	}
	b.SetBytes(32 * 256 * 4)
	var out [][]float32
	for b.Loop() {
		buf, _ := Marshal(rows)
		if err := Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzUnmarshal feeds arbitrary bytes to the decoder: errors are fine,
// panics and runaway allocations are not, and whatever decodes encodes
// and decodes again.
func FuzzUnmarshal(f *testing.F) {
	b, _ := Marshal(full())
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var out sample
		if err := Unmarshal(data, &out); err != nil {
			return
		}
		again, err := Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var back sample
		if err := Unmarshal(again, &back); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
	})
}
