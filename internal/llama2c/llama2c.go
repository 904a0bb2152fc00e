// Package llama2c reads checkpoints in the llama2.c legacy layout (the
// format of Karpathy's tinyllamas, such as stories260K, gorlhf's built-in
// default model) and presents them as a Hugging Face Llama model: HF tensor
// names, HF shapes ([out, in]) and a config.json. The rest of gorlhf then
// needs only one Llama implementation.
//
// The layout is 7 little-endian int32s (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
// classifier is stored separately instead of shared with the embedding),
// then float32 weights, each kind for all layers in a row: token embedding,
// rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, two unused RoPE
// tables of seq_len × head_size/2 floats, and the classifier when untied.
//
// llama2.c applies RoPE to interleaved pairs (x[2i], x[2i+1]) while HF Llama
// rotates halves (x[i], x[i+D/2]). By default Parse permutes the rows of wq
// and wk (see PermuteRotary) so that the weights give llama2.c's results
// under HF's rotate-half RoPE.
package llama2c

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// headerSize is the byte size of the 7 × int32 header.
const headerSize = 7 * 4

// Config is the model shape stored in a llama2.c checkpoint header.
type Config struct {
	Dim       int  // model width (HF hidden_size)
	HiddenDim int  // SwiGLU width (HF intermediate_size)
	Layers    int  // transformer blocks
	Heads     int  // query heads
	KVHeads   int  // key/value heads (grouped-query attention when < Heads)
	Vocab     int  // vocabulary size
	SeqLen    int  // maximum sequence length
	Tied      bool // classifier shares the token embedding
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// KVDim is the width of the key and value projections.
func (c Config) KVDim() int { return c.KVHeads * c.HeadDim() }

// Validate checks that the sizes are positive and consistent.
func (c Config) Validate() error {
	fields := []struct {
		name string
		v    int
	}{{"dim", c.Dim}, {"hidden_dim", c.HiddenDim}, {"n_layers", c.Layers}, {"n_heads", c.Heads},
		{"n_kv_heads", c.KVHeads}, {"vocab_size", c.Vocab}, {"seq_len", c.SeqLen}}
	for _, f := range fields {
		if f.v <= 0 {
			return fmt.Errorf("%s = %d, want > 0", f.name, f.v)
		}
	}
	switch {
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("dim %d is not a multiple of n_heads %d", c.Dim, c.Heads)
	case c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0:
		return fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d", c.Heads, c.KVHeads)
	case c.HeadDim()%2 != 0:
		return fmt.Errorf("head size %d is odd; RoPE needs pairs", c.HeadDim())
	}
	return nil
}

// Tensor is one weight under its Hugging Face name, row-major. It has the
// same fields as safetensors.Tensor, so a value converts directly.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Checkpoint is a parsed llama2.c model.
type Checkpoint struct {
	Config  Config
	Tensors []Tensor // in file order; lm_head.weight only when untied
}

// Tensor returns the weight with the given HF name.
func (c *Checkpoint) Tensor(name string) (Tensor, bool) {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Options controls how a checkpoint is converted.
type Options struct {
	// Interleaved keeps wq and wk rows in llama2.c order. Use it only with
	// a RoPE that rotates interleaved pairs. The zero value permutes them
	// for HF rotate-half RoPE, which is what the HF tensor names promise.
	Interleaved bool
}

// Load reads and parses a checkpoint file.
func Load(path string, o Options) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c: %w", err)
	}
	ck, err := Parse(data, o)
	if err != nil {
		return nil, fmt.Errorf("llama2c: %s: %w", path, err)
	}
	return ck, nil
}

// Parse decodes a checkpoint held in memory. The weights are copied, so data
// may be read-only (an embedded asset) or reused afterwards.
func Parse(data []byte, o Options) (*Checkpoint, error) {
	cfg, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	specs := layout(cfg)
	if err := checkSize(cfg, specs, len(data)); err != nil {
		return nil, err
	}
	ck := &Checkpoint{Config: cfg}
	off := headerSize
	for _, s := range specs {
		n := s.floats()
		if s.name != "" {
			ck.Tensors = append(ck.Tensors, s.decode(data[off:off+4*n])...)
		}
		off += 4 * n
	}
	if !o.Interleaved {
		permuteQK(ck)
	}
	return ck, nil
}

// parseHeader decodes and validates the 7 × int32 header.
func parseHeader(data []byte) (Config, error) {
	if len(data) < headerSize {
		return Config{}, fmt.Errorf("file has %d bytes, too short for the %d-byte header", len(data), headerSize)
	}
	h := make([]int, 7)
	for i := range h {
		h[i] = int(int32(binary.LittleEndian.Uint32(data[4*i:])))
	}
	cfg := Config{Dim: h[0], HiddenDim: h[1], Layers: h[2], Heads: h[3], KVHeads: h[4],
		Vocab: h[5], SeqLen: h[6], Tied: h[5] > 0}
	if cfg.Vocab < 0 {
		cfg.Vocab = -cfg.Vocab
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("header %v: %w", h, err)
	}
	return cfg, nil
}

// checkSize compares the file length with the length the header implies.
func checkSize(cfg Config, specs []spec, fileLen int) error {
	want := int64(headerSize)
	for _, s := range specs {
		want = satAdd(want, satMul(4, s.floats64()))
	}
	if want != int64(fileLen) {
		kind := "shared classifier"
		if !cfg.Tied {
			kind = "separate classifier"
		}
		return fmt.Errorf("file has %d bytes but the header (%+v, %s) implies %d; "+
			"is this a llama2.c legacy (version 0) float32 checkpoint?", fileLen, cfg, kind, want)
	}
	return nil
}

func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}
