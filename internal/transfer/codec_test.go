package transfer

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

func TestCodec_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   nn.Params
	}{
		{"stories260K", stories(t)},
		{"odd shapes", randomParams(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Marshal(42, tc.ps)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := Encode(&buf, 42, tc.ps)
			if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("Encode: %d bytes, err %v; Marshal %d bytes", n, err, len(data))
			}
			w, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if w.Version != 42 {
				t.Fatalf("version %d, want 42", w.Version)
			}
			sameBits(t, w.Params, tc.ps)

			dst := zeroLike(tc.ps)
			v, err := DecodeInto(data, dst)
			if err != nil || v != 42 {
				t.Fatalf("DecodeInto: version %d, err %v", v, err)
			}
			sameBits(t, dst, tc.ps)
		})
	}
}

// TestCodec_IsSafetensors checks that a payload is an ordinary safetensors
// file: written to disk, the safetensors reader opens it.
func TestCodec_IsSafetensors(t *testing.T) {
	ps := randomParams(2)
	data, err := Marshal(3, ps)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/w.safetensors"
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata()[versionKey]; got != "3" {
		t.Fatalf("metadata %s = %q", versionKey, got)
	}
	got, shape, err := f.Float32(ps[2].Name)
	if err != nil || len(got) != 21 || shape[0] != 7 || got[4] != ps[2].Tensor.Data[4] {
		t.Fatalf("Float32: %v %v %v", got, shape, err)
	}
}

// TestDecodeInto_Mismatch checks that a payload for another model is
// refused with the tensor named, and the destination left alone.
func TestDecodeInto_Mismatch(t *testing.T) {
	src := randomParams(3)
	data, err := Marshal(1, src)
	if err != nil {
		t.Fatal(err)
	}
	extra := append(cloneParams(src), nn.Param{Name: "extra.weight", Tensor: tensor.New(2)})
	reshaped := cloneParams(src)
	reshaped[2].Tensor = tensor.New(3, 7)
	for _, tc := range []struct {
		name string
		dst  nn.Params
		want string
	}{
		{"missing in payload", extra, `tensor "extra.weight" is missing`},
		{"missing in destination", cloneParams(src[1:]), `tensor "layers.a.weight" is in the payload but not in the destination`},
		{"shape", reshaped, `tensor "layers.c.weight" has shape [7 3] in the payload, [3 7] in the destination`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.dst {
				for i := range p.Tensor.Data {
					p.Tensor.Data[i] = 5
				}
			}
			before := cloneParams(tc.dst)
			_, err := DecodeInto(data, tc.dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "transfer: decode version 1: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			sameBits(t, tc.dst, before)
		})
	}
}

func TestDecode_Bad(t *testing.T) {
	data, err := Marshal(1, randomParams(4))
	if err != nil {
		t.Fatal(err)
	}
	dst := zeroLike(randomParams(4))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", data[:len(data)-1], "outside"},
		{"empty", nil, "unexpected EOF"},
		{"no version", mustSafetensors(t, nil), "no \"gorlhf.weights.version\" metadata"},
		{"bad version", mustSafetensors(t, map[string]string{versionKey: "-3"}), "is not a version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode err = %v, want %q", err, tc.want)
			}
			if _, err := DecodeInto(tc.data, dst); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeInto err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Marshal(-1, randomParams(4)); err == nil {
		t.Fatal("negative version accepted")
	}
	dup := nn.Params{{Name: "a", Tensor: tensor.New(1)}, {Name: "a", Tensor: tensor.New(1)}}
	if _, err := Marshal(0, dup); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate names: err = %v", err)
	}
}

// mustSafetensors encodes one tensor with the given metadata.
func mustSafetensors(t *testing.T, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := safetensors.Encode(&b, []safetensors.Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}}, safetensors.F32, meta); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
