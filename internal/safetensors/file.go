// Package safetensors reads and writes the safetensors checkpoint format used
// by Hugging Face models, so gorlhf can load and save weights that PyTorch,
// transformers and vLLM read unchanged.
//
// A file is an 8-byte little-endian header length, a JSON header mapping
// tensor names to dtype, shape and byte offsets (plus an optional
// "__metadata__" string map), and the raw little-endian tensor bytes. Large
// models are split into shards listed by model.safetensors.index.json.
//
// Reading validates the header strictly, because checkpoints come from the
// network: a malformed file gives an error naming the file and the tensor,
// never a panic or an out-of-range read. Files are memory-mapped where the
// platform allows, so loading converts each tensor straight from the page
// cache into its float32 copy.
package safetensors

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
)

// File is an opened checkpoint: one safetensors file or a set of shards.
// Its methods are safe for concurrent use, except Close, which must not run
// concurrently with reads. The underlying files must not be truncated while
// open: a mapped file that shrinks faults on access.
type File struct {
	shards   []*shard
	byName   map[string]*shard
	names    []string
	metadata map[string]string
}

// shard is one safetensors file held in memory (mapped or read).
type shard struct {
	path  string
	data  []byte // the whole file
	hdr   *header
	unmap func() error
}

// Open opens a checkpoint. path may be a .safetensors file, a
// model.safetensors.index.json listing shards, or a folder (see OpenDir).
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	switch {
	case st.IsDir():
		return OpenDir(path)
	case isIndexName(path):
		return openIndex(path)
	}
	s, err := openShard(path)
	if err != nil {
		return nil, err
	}
	return newFile([]*shard{s}, nil)
}

// openShard maps and validates one safetensors file.
func openShard(path string) (*shard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	data, unmap, err := mapFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	s, err := parseShard(path, data)
	if err != nil {
		_ = unmap()
		return nil, err
	}
	s.unmap = unmap
	return s, nil
}

// parseShard validates the header of an in-memory file.
func parseShard(path string, data []byte) (*shard, error) {
	hdr, err := parseHeader(data, int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	return &shard{path: path, data: data, hdr: hdr, unmap: func() error { return nil }}, nil
}

// readAll reads a file of known size into memory.
func readAll(f *os.File, size int64) ([]byte, func() error, error) {
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to read", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}

// newFile indexes the shards' tensors. With a weight map (sharded
// checkpoints) only the mapped names are exposed, each from its own shard;
// otherwise every tensor of every shard is, and a name found twice is an
// error.
func newFile(shards []*shard, weightMap map[string]string) (*File, error) {
	f := &File{shards: shards, byName: map[string]*shard{}, metadata: map[string]string{}}
	byPath := map[string]*shard{}
	for _, s := range shards {
		byPath[s.path] = s
		for k, v := range s.hdr.metadata {
			if _, ok := f.metadata[k]; !ok {
				f.metadata[k] = v
			}
		}
	}
	if weightMap != nil {
		for name, path := range weightMap {
			s := byPath[path]
			if _, ok := s.hdr.tensors[name]; !ok {
				f.Close()
				return nil, fmt.Errorf("safetensors: index lists %q in %s, which does not contain it", name, path)
			}
			f.byName[name] = s
		}
	} else {
		for _, s := range shards {
			for name := range s.hdr.tensors {
				if prev, dup := f.byName[name]; dup {
					f.Close()
					return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", name, prev.path, s.path)
				}
				f.byName[name] = s
			}
		}
	}
	f.names = slices.Sorted(maps.Keys(f.byName))
	return f, nil
}

// Close releases the mapped files. Slices returned by Float32 and Bytes are
// copies and stay valid.
func (f *File) Close() error {
	var errs []error
	for _, s := range f.shards {
		if s.unmap != nil {
			errs = append(errs, s.unmap())
			s.unmap = nil
		}
		s.data = nil
	}
	return errors.Join(errs...)
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Metadata returns the "__metadata__" strings (merged over shards, the
// first shard in name order winning on conflicts). The map is a copy.
func (f *File) Metadata() map[string]string { return maps.Clone(f.metadata) }

// Info returns a tensor's dtype and shape.
func (f *File) Info(name string) (TensorInfo, bool) {
	s, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	info := s.hdr.tensors[name]
	info.Shape = slices.Clone(info.Shape)
	return info, true
}

// tensorBytes returns the stored bytes of a tensor, aliasing the mapping.
func (f *File) tensorBytes(name string) ([]byte, TensorInfo, error) {
	s, ok := f.byName[name]
	if !ok {
		return nil, TensorInfo{}, fmt.Errorf("safetensors: no tensor %q", name)
	}
	if s.data == nil {
		return nil, TensorInfo{}, fmt.Errorf("safetensors: %s: %w", s.path, errClosed)
	}
	info := s.hdr.tensors[name]
	off := s.hdr.dataOff
	return s.data[off+info.begin : off+info.end], info, nil
}

// Float32 returns a float32 copy of a floating-point tensor (F32, BF16, F16
// or F64) and its shape. BF16 and F16 widen exactly; F64 rounds to nearest.
func (f *File) Float32(name string) ([]float32, []int, error) {
	b, info, err := f.tensorBytes(name)
	if err != nil {
		return nil, nil, err
	}
	if !info.DType.isFloat() {
		return nil, nil, fmt.Errorf("safetensors: tensor %q has dtype %s, not a float type; use Bytes", name, info.DType)
	}
	out := make([]float32, info.NumElements())
	convert(out, b, info.DType)
	return out, slices.Clone(info.Shape), nil
}

// Bytes returns a copy of a tensor's raw little-endian bytes and its info.
// Integer and boolean tensors (I64, I32, U8, BOOL, ...) are read this way.
func (f *File) Bytes(name string) ([]byte, TensorInfo, error) {
	b, info, err := f.tensorBytes(name)
	if err != nil {
		return nil, TensorInfo{}, err
	}
	info.Shape = slices.Clone(info.Shape)
	return slices.Clone(b), info, nil
}
