package ggufexport

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/gguf"
	"github.com/gorlhf/gorlhf/internal/llama2c"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

func storiesSource(t *testing.T) (Source, *load.Bundle) {
	t.Helper()
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: b.Name, Model: b.Model, Tok: b.Tok, AddBOS: b.AddBOS, EOS: -1,
		ChatTemplate: "{% for m in messages %}{{ m['content'] }}{% endfor %}"}, b
}

// writeRead writes src as a GGUF file and parses it back.
func writeRead(t *testing.T, src Source, dtype gguf.TensorType) ([]gguf.KV, *gguf.File) {
	t.Helper()
	meta, tensors, err := Llama(src, dtype)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := gguf.Write(f, meta, tensors); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return meta, g
}

// TestStoriesRoundTrip writes stories260K as F32 and F16, reads the files
// back, undoes the rotary row order and compares every tensor with the
// model's: F32 bit for bit, F16 within half precision.
func TestStoriesRoundTrip(t *testing.T) {
	src, b := storiesSource(t)
	c := b.Model.(*llama.Model).Config
	for _, dtype := range []gguf.TensorType{gguf.F32, gguf.F16} {
		meta, g := writeRead(t, src, dtype)
		if !reflect.DeepEqual(g.Metadata, meta) {
			t.Errorf("%v: metadata read back differs from what was written", dtype)
		}
		ps := b.Model.Params()
		if len(g.Tensors) != len(ps) {
			t.Errorf("%v: %d tensors, want %d", dtype, len(g.Tensors), len(ps))
		}
		for _, p := range ps {
			name, _ := TensorName(p.Name)
			gt, ok := g.Tensor(name)
			if !ok {
				t.Errorf("%v: tensor %s (%s) missing", dtype, name, p.Name)
				continue
			}
			shape := slices.Clone(p.Tensor.Shape)
			slices.Reverse(shape)
			for i, d := range gt.Dims {
				if int(d) != shape[i] {
					t.Fatalf("%s: dims %v, want %v (innermost first)", name, gt.Dims, shape)
				}
			}
			want := gguf.F32
			if dtype == gguf.F16 && len(shape) > 1 {
				want = gguf.F16
			}
			if gt.Type != want {
				t.Errorf("%s: type %v, want %v", name, gt.Type, want)
			}
			got, err := gt.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasSuffix(name, "attn_q.weight"):
				got = llama2c.PermuteRotary(got, c.Heads, c.HeadDim, c.Hidden)
			case strings.HasSuffix(name, "attn_k.weight"):
				got = llama2c.PermuteRotary(got, c.KVHeads, c.HeadDim, c.Hidden)
			}
			for i, x := range p.Tensor.Data {
				if gt.Type == gguf.F32 && math.Float32bits(got[i]) != math.Float32bits(x) {
					t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], x)
				}
				if tol := max(math.Abs(float64(x))*(1.0/2048), 1.0/(1<<25)); math.Abs(float64(got[i]-x)) > tol {
					t.Fatalf("%s[%d] = %v, want %v within half precision", name, i, got[i], x)
				}
			}
		}
	}
}

// TestStoriesInterleaved checks the rotary layout against the source: the
// GGUF query and key rows are exactly llama2.c's own (interleaved pairs,
// what GGML's RoPE for llama expects), not the HF rotate-half order.
func TestStoriesInterleaved(t *testing.T) {
	src, _ := storiesSource(t)
	_, g := writeRead(t, src, gguf.F32)
	ck, err := llama2c.Parse(assets.Stories260K(), llama2c.Options{Interleaved: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"self_attn.q_proj.weight", "self_attn.k_proj.weight", "mlp.down_proj.weight"} {
		for layer := range ck.Config.Layers {
			hf := "model.layers." + string(rune('0'+layer)) + "." + name
			raw, ok := ck.Tensor(hf)
			if !ok {
				t.Fatalf("llama2c has no %s", hf)
			}
			gn, _ := TensorName(hf)
			gt, _ := g.Tensor(gn)
			got, err := gt.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, raw.Data) {
				t.Errorf("%s differs from llama2.c's interleaved %s", gn, hf)
			}
		}
	}
}

func TestStoriesMetadata(t *testing.T) {
	src, b := storiesSource(t)
	_, g := writeRead(t, src, gguf.F16)
	c := b.Model.(*llama.Model).Config
	want := map[string]any{
		"general.architecture":                   "llama",
		"general.name":                           "stories260K",
		"general.alignment":                      uint32(32),
		"general.file_type":                      uint32(1),
		"llama.context_length":                   uint32(c.MaxPositions),
		"llama.embedding_length":                 uint32(64),
		"llama.block_count":                      uint32(5),
		"llama.feed_forward_length":              uint32(c.Intermediate),
		"llama.attention.head_count":             uint32(8),
		"llama.attention.head_count_kv":          uint32(4),
		"llama.rope.freq_base":                   float32(10000),
		"llama.rope.dimension_count":             uint32(8),
		"llama.attention.layer_norm_rms_epsilon": c.RMSNormEps,
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.chat_template":                src.ChatTemplate,
	}
	for k, w := range want {
		if v, ok := g.Get(k); !ok || !reflect.DeepEqual(v, w) {
			t.Errorf("%s = %#v, want %#v", k, v, w)
		}
	}
	toks, _ := g.Get("tokenizer.ggml.tokens")
	types, _ := g.Get("tokenizer.ggml.token_type")
	scores, _ := g.Get("tokenizer.ggml.scores")
	ts, ty, sc := toks.([]string), types.([]int32), scores.([]float32)
	if len(ts) != 512 || len(ty) != 512 || len(sc) != 512 {
		t.Fatalf("vocabulary of %d/%d/%d entries, want 512", len(ts), len(ty), len(sc))
	}
	tok := b.Tok
	for id, w := range map[int]struct {
		tok string
		typ int32
	}{0: {"<unk>", 2}, 1: {"<s>", 3}, 2: {"</s>", 3}, 3: {"<0x00>", 6}, 13: {"<0x0A>", 6}, 258: {"<0xFF>", 6}} {
		if ts[id] != w.tok || ty[id] != w.typ {
			t.Errorf("token %d = %q type %d, want %q type %d", id, ts[id], ty[id], w.tok, w.typ)
		}
	}
	for id := 259; id < 512; id++ {
		if ty[id] != 1 || strings.Contains(ts[id], " ") {
			t.Errorf("token %d = %q type %d, want a normal token spelled with ▁", id, ts[id], ty[id])
		}
		if back, ok := tok.TokenID(ts[id]); !ok || back != id {
			t.Errorf("token %d %q maps back to %d", id, ts[id], back)
		}
	}
	if sc[300] == 0 && sc[400] == 0 {
		t.Error("scores are all zero")
	}
}

func TestRefusals(t *testing.T) {
	g, err := gpt2.Config{VocabSize: 16, MaxPositions: 8, Hidden: 8, Layers: 1, Heads: 2, LayerNormEps: 1e-5}.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Llama(Source{Model: g}, gguf.F32); err == nil || !strings.Contains(err.Error(), "GPT-2 may come later") {
		t.Errorf("gpt2: %v", err)
	}
	q, err := llama.Config{VocabSize: 16, Hidden: 8, Intermediate: 16, Layers: 1, Heads: 2, RMSNormEps: 1e-5, AttentionBias: true}.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Llama(Source{Model: q}, gguf.F32); err == nil || !strings.Contains(err.Error(), "qwen2") {
		t.Errorf("qwen2: %v", err)
	}
	src, _ := storiesSource(t)
	if _, _, err := Llama(src, gguf.TensorType(8)); err == nil {
		t.Error("Q8_0 accepted")
	}
	src.Tok = nil
	if _, _, err := Llama(src, gguf.F32); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("no tokenizer: %v", err)
	}
}

// TestHFVocab exports the tok512 vocabulary through its tokenizer.json
// (what a converted or trained stories260K folder holds): same tokens and
// types as the llama2.c file, SentencePiece-style.
func TestHFVocab(t *testing.T) {
	tok, err := parseTok512()
	if err != nil {
		t.Fatal(err)
	}
	js, err := tok.HFJSON()
	if err != nil {
		t.Fatal(err)
	}
	v, err := hfVocab(js)
	if err != nil {
		t.Fatal(err)
	}
	ref := llama2cVocab(tok)
	if v.model != "llama" || !slices.Equal(v.tokens, ref.tokens) || !slices.Equal(v.types, ref.types) {
		t.Errorf("hf vocab %s differs from the llama2.c one:\n%q\n%v\n%q\n%v", v.model, v.tokens[:8], v.types[:8], ref.tokens[:8], ref.types[:8])
	}
	if _, err := hfVocab(bytes.Repeat([]byte("{"), 3)); err == nil {
		t.Error("broken tokenizer.json accepted")
	}
}

func parseTok512() (*tokenizer.Llama2C, error) { return tokenizer.ParseLlama2C(assets.Tok512()) }

// TestHFVocabGPT2 exports GPT-2's byte-level tokenizer.json: model "gpt2",
// every token as our tokenizer spells it, the merges in order, the
// end-of-text token a control token.
func TestHFVocabGPT2(t *testing.T) {
	path := filepath.Join("..", "tokenizer", "testdata", "gpt2", "tokenizer.json.gz")
	zf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	v, err := hfVocab(js)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if v.model != "gpt2" || len(v.tokens) != tok.VocabSize() || len(v.merges) != 50000 {
		t.Fatalf("model %s, %d tokens (want %d), %d merges (want 50000)", v.model, len(v.tokens), tok.VocabSize(), len(v.merges))
	}
	for id, s := range v.tokens {
		if s != tok.Token(id) {
			t.Fatalf("token %d = %q, ours %q", id, s, tok.Token(id))
		}
	}
	if v.merges[0] != "Ġ t" || v.types[50256] != tokControl || v.types[100] != tokNormal {
		t.Errorf("first merge %q, types %d/%d", v.merges[0], v.types[50256], v.types[100])
	}
}
