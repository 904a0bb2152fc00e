package safetensors

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// streamTensors are odd shapes (a scalar, an empty tensor, a chunk-straddling
// vector) in no particular name order.
func streamTensors() []Tensor {
	big := make([]float32, streamChunk/4*3+5) // spans several conversion chunks
	for i := range big {
		big[i] = float32(i)*0.25 - 7
	}
	return []Tensor{
		{Name: "z.big", Shape: []int{len(big)}, Data: big},
		{Name: "a.scalar", Shape: []int{}, Data: []float32{float32(math.Inf(-1))}},
		{Name: "m.empty", Shape: []int{3, 0}, Data: []float32{}},
		{Name: "b.odd", Shape: []int{3, 1, 5}, Data: []float32{1, -2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, float32(math.NaN())}},
	}
}

func TestEncode_SameBytesAsWrite(t *testing.T) {
	ts := streamTensors()
	meta := map[string]string{"format": "pt", "k": "v"}
	for _, dt := range []DType{F32, BF16} {
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := Write(path, ts, dt, meta); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		n, err := Encode(&buf, ts, dt, meta)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(buf.Len()) || !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("%s: Encode wrote %d bytes (count %d), Write %d; equal=%v", dt, buf.Len(), n, len(want), bytes.Equal(buf.Bytes(), want))
		}
	}
}

func TestEncode_Errors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Encode(&buf, []Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1}}}, F32, nil); err == nil || !strings.Contains(err.Error(), `tensor "a"`) {
		t.Fatalf("shape mismatch: err = %v", err)
	}
	if _, err := Encode(&buf, nil, F16, nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("F16: err = %v", err)
	}
}

// TestReader_RoundTrip streams an encoded file back and compares bits.
func TestReader_RoundTrip(t *testing.T) {
	ts := streamTensors()
	var buf bytes.Buffer
	if _, err := Encode(&buf, ts, F32, map[string]string{"v": "7"}); err != nil {
		t.Fatal(err)
	}
	size := int64(buf.Len())
	r, err := NewReader(&buf, size)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Metadata()["v"]; got != "7" {
		t.Fatalf("metadata v = %q", got)
	}
	wantOrder := []string{"a.scalar", "b.odd", "m.empty", "z.big"}
	if !slices.Equal(r.Names(), wantOrder) {
		t.Fatalf("names %v, want %v", r.Names(), wantOrder)
	}
	for _, name := range r.Names() {
		info, _ := r.Info(name)
		dst := make([]float32, info.NumElements())
		if err := r.ReadFloat32(name, dst); err != nil {
			t.Fatal(err)
		}
		src := ts[slices.IndexFunc(ts, func(x Tensor) bool { return x.Name == name })]
		if !slices.Equal(info.Shape, src.Shape) {
			t.Fatalf("%s: shape %v, want %v", name, info.Shape, src.Shape)
		}
		for i := range dst {
			if math.Float32bits(dst[i]) != math.Float32bits(src.Data[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, dst[i], src.Data[i])
			}
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes left unread", buf.Len())
	}
}

func TestReader_Errors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Encode(&buf, streamTensors(), F32, nil); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	size := int64(len(full))

	if _, err := NewReader(bytes.NewReader(full[:5]), size); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("5 bytes: err = %v", err)
	}
	if _, err := NewReader(bytes.NewReader(full[:40]), size); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut header: err = %v", err)
	}
	if _, err := NewReader(bytes.NewReader(full), size-4); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("short size: err = %v", err)
	}

	r, err := NewReader(bytes.NewReader(full[:len(full)-3]), size)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFloat32("z.big", make([]float32, 1)); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("out of order: err = %v", err)
	}
	if err := r.ReadFloat32("a.scalar", make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "destination holds 2") {
		t.Fatalf("wrong length: err = %v", err)
	}
	var last error
	for _, name := range r.Names() {
		info, _ := r.Info(name)
		if last = r.ReadFloat32(name, make([]float32, info.NumElements())); last != nil {
			break
		}
	}
	if !errors.Is(last, io.ErrUnexpectedEOF) || !strings.Contains(last.Error(), `"z.big"`) {
		t.Fatalf("truncated data: err = %v", last)
	}
}

// slowHeader parses with the general path only.
func slowHeader(b []byte, dataLen int64) (*header, error) {
	h := &header{}
	entries, err := splitObject(b)
	if err != nil {
		return nil, err
	}
	if err := h.decode(entries, dataLen); err != nil {
		return nil, err
	}
	return h, nil
}

// FuzzScanHeader checks the fast header scanner against the general
// parser: whenever the scanner accepts, the general parser must give the
// same tensors and metadata, or the same error.
func FuzzScanHeader(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"__metadata__":{"format":"pt","v":"1"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`,
		`{"a":{"shape":[],"data_offsets":[0,4],"dtype":"F32"}}  `, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[0],"data_offsets":[4,4]}}`,
		` {"a":1}`, `{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F\u0033\u0032","shape":[1],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`,
		`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, `{"__metadata__":null}`, `{"__metadata__":{"a":"b","a":"c"}}`,
	} {
		f.Add([]byte(s), int64(24))
	}
	f.Fuzz(func(t *testing.T, b []byte, dataLen int64) {
		fast, ok := scanHeader(b)
		if !ok {
			return
		}
		hf := &header{}
		errFast := hf.decodeFast(fast, dataLen)
		hs, errSlow := slowHeader(b, dataLen)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("fast err %v, general err %v", errFast, errSlow)
		}
		if errFast != nil {
			if errFast.Error() != errSlow.Error() {
				t.Fatalf("fast err %q, general err %q", errFast, errSlow)
			}
			return
		}
		if len(hf.tensors) != len(hs.tensors) || len(hf.metadata) != len(hs.metadata) {
			t.Fatalf("fast %+v, general %+v", hf, hs)
		}
		for k, v := range hs.metadata {
			if hf.metadata[k] != v {
				t.Fatalf("metadata %q: fast %q, general %q", k, hf.metadata[k], v)
			}
		}
		for k, v := range hs.tensors {
			g, ok := hf.tensors[k]
			if !ok || g.DType != v.DType || !slices.Equal(g.Shape, v.Shape) || g.begin != v.begin || g.end != v.end {
				t.Fatalf("tensor %q: fast %+v, general %+v", k, g, v)
			}
		}
	})
}
