package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func sampleFile() ([]KV, []Tensor) {
	meta := []KV{
		{"general.architecture", "llama"},
		{AlignmentKey, uint32(32)},
		{"u8", uint8(7)}, {"i8", int8(-7)}, {"u16", uint16(65000)}, {"i16", int16(-3000)},
		{"u32", uint32(1 << 31)}, {"i32", int32(-5)}, {"f32", float32(1.5e-5)}, {"b", true},
		{"u64", uint64(1 << 40)}, {"i64", int64(-1 << 40)}, {"f64", 0.1},
		{"strs", []string{"<unk>", "▁the", ""}}, {"scores", []float32{0, -1.25, 3}},
		{"types", []int32{2, 1, 6}}, {"flags", []bool{true, false}}, {"empty", []uint64{}},
	}
	tensors := []Tensor{
		NewF32("a.weight", []uint64{3, 2}, []float32{1, 2, 3, 4, 5, 6}),
		NewF16("b.weight", []uint64{5}, []float32{0.5, -2, 65504, 1e-7, 3.14159}),
		NewF32("c", []uint64{1}, []float32{-0}),
	}
	return meta, tensors
}

func TestRoundTrip(t *testing.T) {
	meta, tensors := sampleFile()
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.Alignment != 32 {
		t.Fatalf("version %d alignment %d", f.Version, f.Alignment)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Fatalf("metadata:\n got %#v\nwant %#v", f.Metadata, meta)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
	}
	for i, want := range tensors {
		got := f.Tensors[i]
		if got.Name != want.Name || !reflect.DeepEqual(got.Dims, want.Dims) || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d: got %+v, want %+v", i, got, want)
		}
	}
	vals, err := f.Tensors[1].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, -2, 65504, float32(HalfToFloat32(Float32ToHalf(1e-7))), HalfToFloat32(Float32ToHalf(3.14159))}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("F16 values %v, want %v", vals, want)
	}
}

// TestHeaderBytes checks the layout against the specification by hand:
// magic, version, counts, then the first key.
func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []KV{{"k", uint32(9)}}, []Tensor{NewF32("t", []uint64{2}, []float32{1, 2})}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	want := []byte("GGUF")
	want = binary.LittleEndian.AppendUint32(want, 3)
	want = binary.LittleEndian.AppendUint64(want, 1) // tensors
	want = binary.LittleEndian.AppendUint64(want, 1) // kv
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = append(want, 'k')
	want = binary.LittleEndian.AppendUint32(want, uint32(TypeUint32))
	want = binary.LittleEndian.AppendUint32(want, 9)
	want = binary.LittleEndian.AppendUint64(want, 1)
	want = append(want, 't')
	want = binary.LittleEndian.AppendUint32(want, 1) // n_dims
	want = binary.LittleEndian.AppendUint64(want, 2)
	want = binary.LittleEndian.AppendUint32(want, uint32(F32))
	want = binary.LittleEndian.AppendUint64(want, 0) // offset
	for len(want)%32 != 0 {
		want = append(want, 0)
	}
	want = binary.LittleEndian.AppendUint32(want, math.Float32bits(1))
	want = binary.LittleEndian.AppendUint32(want, math.Float32bits(2))
	for len(want)%32 != 0 {
		want = append(want, 0)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("bytes\n got %x\nwant %x", b, want)
	}
}

// TestTruncated parses every proper prefix of a file: each must fail with
// an error, never panic.
func TestTruncated(t *testing.T) {
	meta, tensors := sampleFile()
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// the last tensor's data ends before the final padding
	last := len(b) - (32 - 4)
	for n := range last {
		if _, err := Parse(b[:n]); err == nil {
			t.Fatalf("prefix of %d bytes parsed without error", n)
		}
	}
	if _, err := Parse(b[:last-1]); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated data: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	meta, tensors := sampleFile()
	var buf bytes.Buffer
	if err := Write(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	cases := map[string]struct {
		edit func([]byte)
		want string
	}{
		"magic":   {func(b []byte) { copy(b, "GGML") }, "not a GGUF file"},
		"version": {func(b []byte) { b[4] = 2 }, "version 2"},
		"counts":  {func(b []byte) { binary.LittleEndian.PutUint64(b[16:], 1<<40) }, "more than"},
		"type":    {func(b []byte) { binary.LittleEndian.PutUint32(b[24+8+len("general.architecture"):], 99) }, "unknown value type 99"},
	}
	for name, c := range cases {
		b := bytes.Clone(good)
		c.edit(b)
		_, err := Parse(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	var buf bytes.Buffer
	bad := []Tensor{{Name: "x", Dims: []uint64{3}, Type: F32, Data: make([]byte, 8)}}
	if err := Write(&buf, nil, bad); err == nil || !strings.Contains(err.Error(), "tensor x") {
		t.Errorf("short data: %v", err)
	}
	if err := Write(&buf, []KV{{AlignmentKey, uint32(12)}}, nil); err == nil {
		t.Error("alignment 12 accepted")
	}
	if err := Write(&buf, []KV{{"m", map[string]int{}}}, nil); err == nil || !strings.Contains(err.Error(), "metadata m") {
		t.Errorf("map value: %v", err)
	}
}

// TestHalfExhaustive: every half value converts to float32 and back to
// itself (NaNs to a NaN), and the float32 conversion agrees with a float64
// reference for normals and subnormals.
func TestHalfExhaustive(t *testing.T) {
	for h := range 1 << 16 {
		f := HalfToFloat32(uint16(h))
		back := Float32ToHalf(f)
		exp, mant := h>>10&0x1f, h&0x3ff
		if exp == 0x1f && mant != 0 {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, back)
		}
		if exp < 0x1f {
			ref := math.Ldexp(float64(mant), -24)
			if exp > 0 {
				ref = math.Ldexp(float64(mant|0x400), int(exp)-25)
			}
			if h&0x8000 != 0 {
				ref = -ref
			}
			if float64(f) != ref {
				t.Fatalf("%#04x → %v, want %v", h, f, ref)
			}
		}
	}
}

// TestHalfRounding compares Float32ToHalf with a slow reference: the
// nearest of all finite halves (ties to even mantissa), for random floats
// over the whole half range.
func TestHalfRounding(t *testing.T) {
	var halves []float64 // positive finite halves in order, index = bits
	for h := range 0x7c00 {
		halves = append(halves, float64(HalfToFloat32(uint16(h))))
	}
	ref := func(x float64) uint16 {
		if x >= 65520 { // 65504 + half an ulp (2^4): ties to even go to Inf
			return 0x7c00
		}
		lo, hi := 0, len(halves)-1
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if halves[mid] <= x {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if lo+1 < len(halves) {
			d0, d1 := x-halves[lo], halves[lo+1]-x
			if d1 < d0 || (d1 == d0 && lo%2 == 1) {
				return uint16(lo + 1)
			}
		}
		return uint16(lo)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 {
		e := r.IntN(46) - 28 // 2^-28 … 2^17
		x := float32(math.Ldexp(1+r.Float64(), e))
		if i%7 == 0 { // exact ties and near-ties
			x = float32(math.Ldexp(float64(r.IntN(1<<12))+0.5, r.IntN(20)-30))
		}
		got, want := Float32ToHalf(x), ref(float64(x))
		if got != want {
			t.Fatalf("Float32ToHalf(%g) = %#04x, want %#04x", x, got, want)
		}
		if neg := Float32ToHalf(-x); neg != want|0x8000 {
			t.Fatalf("Float32ToHalf(%g) = %#04x, want %#04x", -x, neg, want|0x8000)
		}
	}
}
