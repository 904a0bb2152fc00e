package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build returns a file whose header is the JSON text, padded, followed by
// data.
func build(header string, data []byte) []byte {
	h := []byte(header)
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	return append(b, data...)
}

func withLen(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func TestParseHeader_Malformed(t *testing.T) {
	eight := make([]byte, 8)
	tests := []struct {
		name string
		file []byte
		want string // substring of the error
	}{
		{"empty", nil, "too short"},
		{"short length", []byte{1, 2, 3}, "too short"},
		{"zero length", withLen(0, ""), "too small"},
		{"huge length", withLen(1<<62, "{}"), "exceeds the"},
		{"length past file", withLen(100, "{}"), "exceeds the file size"},
		{"truncated json", build(`{"a":{"dtype":"F32"`, nil), "header JSON"},
		{"not an object", build(`[1,2]`, nil), "does not start with"},
		{"bad json", build(`{"a":}`, nil), "header JSON"},
		{"trailing garbage", build(`{}x`, nil), "unexpected bytes"},
		{"invalid utf8", build("{\"\xff\":1}", nil), "UTF-8"},
		{"duplicate key", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), "duplicate"},
		{"unknown dtype", build(`{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}`, eight), "unknown dtype"},
		{"sub-byte dtype", build(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, eight[:1]), "unknown dtype"},
		{"missing field", build(`{"a":{"dtype":"F32","shape":[2]}}`, eight), "needs dtype"},
		{"unknown field", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, eight), "unknown field"},
		{"field name case", build(`{"a":{"DType":"F32","shape":[2],"data_offsets":[0,8]}}`, eight), "unknown field \"DType\""},
		{"null shape", build(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,8]}}`, eight), "needs dtype"},
		{"negative shape", build(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight), "negative"},
		{"fractional shape", build(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, eight), "tensor \"a\""},
		{"overflowing shape", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, eight), "overflows"},
		{"offsets out of range", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}`, eight), "outside"},
		{"offsets reversed", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}`, eight), "outside"},
		{"negative offset", build(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[-8,0]}}`, eight), "outside"},
		{"three offsets", build(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,4,8]}}`, eight), "want 2"},
		{"shape size mismatch", build(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), "needs 12"},
		{"gap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "gap"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "overlaps"},
		{"trailing data", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), "cover 4 bytes"},
		{"metadata not strings", build(`{"__metadata__":{"n":1}}`, nil), "__metadata__"},
		{"metadata not object", build(`{"__metadata__":"x"}`, nil), "__metadata__"},
		{"entry not object", build(`{"a":[1]}`, nil), "tensor \"a\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHeader(tc.file, int64(len(tc.file)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseHeader error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseHeader_Valid(t *testing.T) {
	tests := []struct {
		name    string
		file    []byte
		tensors int
	}{
		{"empty object", build(`{}`, nil), 0},
		{"metadata only", build(`{"__metadata__":{"k":"v"}}`, nil), 0},
		{"null metadata", build(`{"__metadata__":null}`, nil), 0},
		{"zero-size tensors share an offset", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"I64","shape":[2,0],"data_offsets":[4,4]}}`, make([]byte, 4)), 3},
		{"unsorted offsets", build(`{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 4)), 2},
		{"scalar", build(`{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, make([]byte, 8)), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHeader(tc.file, int64(len(tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.tensors) != tc.tensors {
				t.Errorf("%d tensors, want %d", len(h.tensors), tc.tensors)
			}
		})
	}
}

func TestOpen_Errors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := filepath.Join(dir, "good.safetensors")
	if err := Write(good, []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}, F32, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing file", filepath.Join(dir, "nope.safetensors"), "no such file"},
		{"corrupt file", write("bad.safetensors", "\x02\x00\x00\x00\x00\x00\x00\x00[]"), "bad.safetensors"},
		{"folder without weights", t.TempDir(), "has neither"},
		{"index bad json", write("a.safetensors.index.json", "{"), "a.safetensors.index.json"},
		{"index empty map", write("b.safetensors.index.json", `{"weight_map":{}}`), "weight_map"},
		{"index escapes folder", write("c.safetensors.index.json", `{"weight_map":{"w":"../good.safetensors"}}`), "plain file name"},
		{"index missing shard", write("d.safetensors.index.json", `{"weight_map":{"w":"gone.safetensors"}}`), "gone.safetensors"},
		{"index wrong tensor", write("e.safetensors.index.json", `{"weight_map":{"v":"good.safetensors"}}`), "does not contain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Open(tc.path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFile_Close(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(path, []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1, 2, 3}}}, F32, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := f.Float32("w")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data, []float32{1, 2, 3}) {
		t.Errorf("data changed after Close: %v", data)
	}
	if _, _, err := f.Float32("w"); !errors.Is(err, errClosed) {
		t.Errorf("Float32 after Close = %v, want errClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWrite_RoundTrip(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1.5, math.MaxFloat32, math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), 1e-40}
	big := make([]float32, 200_000) // above the parallel conversion grain
	for i := range big {
		big[i] = float32(i)*0.37 - 5000
	}
	tensors := []Tensor{
		{Name: "z.special", Shape: []int{2, 5}, Data: special},
		{Name: "a.big", Shape: []int{400, 500}, Data: big},
		{Name: "scalar", Shape: []int{}, Data: []float32{7}},
		{Name: "empty", Shape: []int{3, 0}, Data: nil},
		{Name: "<html&name>", Shape: []int{1}, Data: []float32{2}},
	}
	meta := map[string]string{"format": "pt", "note": "quote \" and <tag>"}
	dir := t.TempDir()
	t.Run("F32 exact", func(t *testing.T) {
		p1, p2 := filepath.Join(dir, "1.safetensors"), filepath.Join(dir, "2.safetensors")
		if err := Write(p1, tensors, F32, meta); err != nil {
			t.Fatal(err)
		}
		back := readAllTensors(t, p1)
		for _, want := range tensors {
			i := slices.IndexFunc(back, func(x Tensor) bool { return x.Name == want.Name })
			if i < 0 || !slices.Equal(back[i].Shape, want.Shape) || !sameBits(back[i].Data, want.Data) {
				t.Errorf("tensor %q did not round-trip", want.Name)
			}
		}
		if err := Write(p2, back, F32, meta); err != nil {
			t.Fatal(err)
		}
		assertSameFile(t, p1, p2)
		f, _ := Open(p1)
		defer f.Close()
		if got := f.Metadata(); got["note"] != meta["note"] || len(got) != 2 {
			t.Errorf("Metadata() = %v", got)
		}
	})
	t.Run("BF16 to BF16 exact", func(t *testing.T) {
		p1, p2 := filepath.Join(dir, "b1.safetensors"), filepath.Join(dir, "b2.safetensors")
		if err := Write(p1, tensors, BF16, nil); err != nil {
			t.Fatal(err)
		}
		if err := Write(p2, readAllTensors(t, p1), BF16, nil); err != nil {
			t.Fatal(err)
		}
		assertSameFile(t, p1, p2)
	})
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func assertSameFile(t *testing.T, a, b string) {
	t.Helper()
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ (%d vs %d bytes)", a, b, len(x), len(y))
	}
}

func TestWrite_Header(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.safetensors")
	err := Write(path, []Tensor{{Name: "b", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{2}, Data: []float32{2, 3}}},
		F32, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(raw)
	want := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`
	if n%8 != 0 || strings.TrimRight(string(raw[8:8+n]), " ") != want {
		t.Errorf("header (%d bytes) = %q, want %q padded to 8", n, raw[8:8+n], want)
	}
	if got := raw[8+n:]; !bytes.Equal(got, []byte{0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x3f}) {
		t.Errorf("data = %x", got)
	}
}

func TestWrite_Errors(t *testing.T) {
	dir := t.TempDir()
	ok := Tensor{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}
	tests := []struct {
		name    string
		path    string
		tensors []Tensor
		dtype   DType
		want    string
	}{
		{"dtype", filepath.Join(dir, "x"), []Tensor{ok}, F16, "not supported"},
		{"shape mismatch", filepath.Join(dir, "x"), []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1}}}, F32, "holds 3 values"},
		{"negative dim", filepath.Join(dir, "x"), []Tensor{{Name: "w", Shape: []int{-1}}}, F32, "negative"},
		{"duplicate", filepath.Join(dir, "x"), []Tensor{ok, ok}, F32, "duplicate"},
		{"reserved", filepath.Join(dir, "x"), []Tensor{{Name: metadataKey, Shape: []int{0}}}, F32, "reserved"},
		{"bad utf8", filepath.Join(dir, "x"), []Tensor{{Name: "\xff", Shape: []int{0}}}, F32, "UTF-8"},
		{"missing folder", filepath.Join(dir, "no", "x"), []Tensor{ok}, F32, "no such file"},
		{"path is a folder", dir, []Tensor{ok}, F32, dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(tc.path, tc.tensors, tc.dtype, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Write error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
