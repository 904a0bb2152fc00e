package safetensors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// golden is testdata/golden.json, written by tools/formats_make_safetensors.py
// from PyTorch without the safetensors package.
type golden struct {
	Metadata map[string]string `json:"metadata"`
	Tensors  map[string]struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		F32Bits []uint32 `json:"f32_bits"`
		Hex     string   `json:"hex"`
	} `json:"tensors"`
	BF16RNE []struct {
		F32  uint32 `json:"f32"`
		BF16 uint16 `json:"bf16"`
	} `json:"bf16_rne"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Tensors) == 0 || len(g.BF16RNE) == 0 {
		t.Fatal("golden.json is empty")
	}
	return g
}

// checkFloats compares every float tensor of f that golden lists.
func checkFloats(t *testing.T, f *File, g golden) int {
	t.Helper()
	n := 0
	for name, want := range g.Tensors {
		if want.F32Bits == nil {
			continue
		}
		if _, ok := f.Info(name); !ok {
			continue
		}
		n++
		got, shape, err := f.Float32(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Equal(shape, want.Shape) {
			t.Errorf("%s: shape %v, want %v", name, shape, want.Shape)
		}
		if len(got) != len(want.F32Bits) {
			t.Errorf("%s: %d values, want %d", name, len(got), len(want.F32Bits))
			continue
		}
		for i, v := range got {
			if math.Float32bits(v) != want.F32Bits[i] {
				t.Errorf("%s[%d] = %#08x, want %#08x", name, i, math.Float32bits(v), want.F32Bits[i])
			}
		}
	}
	return n
}

func TestFile_Golden(t *testing.T) {
	g := loadGolden(t)
	f, err := Open("testdata/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	wantNames := make([]string, 0, len(g.Tensors))
	for name := range g.Tensors {
		wantNames = append(wantNames, name)
	}
	slices.Sort(wantNames)
	if got := f.Names(); !slices.Equal(got, wantNames) {
		t.Fatalf("Names() = %v, want %v", got, wantNames)
	}
	if got := f.Metadata(); len(got) != len(g.Metadata) || got["source"] != g.Metadata["source"] {
		t.Errorf("Metadata() = %v, want %v", got, g.Metadata)
	}
	t.Run("info", func(t *testing.T) {
		for name, want := range g.Tensors {
			info, ok := f.Info(name)
			if !ok || string(info.DType) != want.DType || !slices.Equal(info.Shape, want.Shape) {
				t.Errorf("Info(%q) = %+v, %v; want %s %v", name, info, ok, want.DType, want.Shape)
			}
		}
		if _, ok := f.Info("missing"); ok {
			t.Error("Info(missing) reported a tensor")
		}
	})
	t.Run("float32", func(t *testing.T) {
		if n := checkFloats(t, f, g); n != 8 {
			t.Errorf("checked %d float tensors, want 8", n)
		}
	})
	t.Run("raw", func(t *testing.T) {
		for name, want := range g.Tensors {
			if want.Hex == "" {
				continue
			}
			b, info, err := f.Bytes(name)
			if err != nil || hex.EncodeToString(b) != want.Hex || string(info.DType) != want.DType {
				t.Errorf("Bytes(%q) = %x, %v, %v; want %s", name, b, info.DType, err, want.Hex)
			}
			if _, _, err := f.Float32(name); err == nil {
				t.Errorf("Float32(%q) of %s succeeded, want an error", name, want.DType)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, _, err := f.Float32("nope"); err == nil {
			t.Error("Float32(nope) succeeded")
		}
	})
}

func TestOpen_Sharded(t *testing.T) {
	g := loadGolden(t)
	dir := "testdata/golden_sharded"
	for _, path := range []string{dir, filepath.Join(dir, IndexName)} {
		t.Run(path, func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Names()) != 8 {
				t.Errorf("Names() = %v, want 8 float tensors", f.Names())
			}
			if n := checkFloats(t, f, g); n != 8 {
				t.Errorf("checked %d tensors, want 8", n)
			}
			if f.Metadata()["format"] != "pt" {
				t.Errorf("Metadata() = %v", f.Metadata())
			}
		})
	}
}

func TestFloat32ToBF16_MatchesTorch(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.BF16RNE {
		if c.F32&0x7fffffff > 0x7f800000 {
			// torch's vectorised CPU path writes NaN as 0xffff, its scalar
			// path as 0x7fc0 (ours); any NaN is acceptable.
			if got := Float32ToBF16(math.Float32frombits(c.F32)); got&0x7fff <= 0x7f80 {
				t.Errorf("Float32ToBF16(NaN %#08x) = %#04x, not a NaN", c.F32, got)
			}
			continue
		}
		if got := Float32ToBF16(math.Float32frombits(c.F32)); got != c.BF16 {
			t.Errorf("Float32ToBF16(%#08x) = %#04x, torch gives %#04x", c.F32, got, c.BF16)
		}
	}
}

func TestF16ToFloat32_Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		got := F16ToFloat32(uint16(h))
		sign := 1.0
		if h&0x8000 != 0 {
			sign = -1
		}
		exp, mant := (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0:
			want = sign * math.Ldexp(float64(mant), -24)
		case exp == 31 && mant == 0:
			want = math.Inf(int(sign))
		case exp == 31:
			if !math.IsNaN(float64(got)) || math.Float32bits(got)&0x7fffff != uint32(mant)<<13 {
				t.Errorf("F16ToFloat32(%#04x) = %v (%#08x), want NaN with payload", h, got, math.Float32bits(got))
			}
			continue
		default:
			want = sign * math.Ldexp(float64(mant|0x400), exp-25)
		}
		if float64(got) != want || math.Signbit(float64(got)) != (sign < 0) {
			t.Errorf("F16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestWrite_MatchesPythonLayout(t *testing.T) {
	tests := []struct {
		golden string
		dtype  DType
		meta   map[string]string
	}{
		{"testdata/golden_f32.safetensors", F32, map[string]string{"format": "pt"}},
		{"testdata/golden_bf16.safetensors", BF16, nil},
	}
	for _, tc := range tests {
		t.Run(string(tc.dtype), func(t *testing.T) {
			tensors := readAllTensors(t, tc.golden)
			out := filepath.Join(t.TempDir(), "out.safetensors")
			if err := Write(out, tensors, tc.dtype, tc.meta); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(tc.golden)
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, want) {
				t.Errorf("Write output differs from the Python-written file:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// readAllTensors loads every tensor of a file as float32.
func readAllTensors(t *testing.T, path string) []Tensor {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Tensor
	for _, name := range f.Names() {
		data, shape, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Tensor{Name: name, Shape: shape, Data: data})
	}
	return out
}
