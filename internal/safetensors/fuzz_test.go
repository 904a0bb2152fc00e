package safetensors

import (
	"os"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes through the whole in-memory read
// path. Malformed input must give an error, never a panic; input that parses
// must let every tensor be read without going out of range.
func FuzzParseHeader(f *testing.F) {
	for _, name := range []string{"testdata/golden.safetensors", "testdata/golden_bf16.safetensors"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add(build(`{}`, nil))
	f.Add(build(`{"__metadata__":{"a":"b"},"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0, 0x3c, 0, 0x7c}))
	f.Add(build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(withLen(1<<40, "{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseShard("fuzz", data)
		if err != nil {
			return
		}
		file, err := newFile([]*shard{s}, nil)
		if err != nil {
			t.Fatalf("newFile after a valid header: %v", err)
		}
		for _, name := range file.Names() {
			info, _ := file.Info(name)
			b, _, err := file.Bytes(name)
			if err != nil || len(b) != info.NumElements()*info.DType.Size() {
				t.Fatalf("Bytes(%q): %d bytes, err %v, info %+v", name, len(b), err, info)
			}
			if info.DType.isFloat() {
				if v, _, err := file.Float32(name); err != nil || len(v) != info.NumElements() {
					t.Fatalf("Float32(%q): %d values, err %v", name, len(v), err)
				}
			}
		}
	})
}
