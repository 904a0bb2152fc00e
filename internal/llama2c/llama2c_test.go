package llama2c

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// The real model, read from the assets folder by path so this package's
// tests do not import another gorlhf package.
const (
	modelPath = "../assets/stories260K/stories260K.bin"
	refPath   = "../assets/stories260K/reference_greedy.json"
)

func readModel(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(modelPath)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParse_Stories260K(t *testing.T) {
	ck, err := Parse(readModel(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, SeqLen: 512, Tied: true}
	if ck.Config != want {
		t.Fatalf("Config = %+v, want %+v", ck.Config, want)
	}
	if got := len(ck.Tensors); got != 2+9*5 {
		t.Errorf("%d tensors, want %d", got, 2+9*5)
	}
	shapes := map[string][]int{
		"model.embed_tokens.weight":                      {512, 64},
		"model.norm.weight":                              {64},
		"model.layers.0.input_layernorm.weight":          {64},
		"model.layers.4.post_attention_layernorm.weight": {64},
		"model.layers.2.self_attn.q_proj.weight":         {64, 64},
		"model.layers.2.self_attn.k_proj.weight":         {32, 64},
		"model.layers.2.self_attn.v_proj.weight":         {32, 64},
		"model.layers.2.self_attn.o_proj.weight":         {64, 64},
		"model.layers.3.mlp.gate_proj.weight":            {172, 64},
		"model.layers.3.mlp.up_proj.weight":              {172, 64},
		"model.layers.3.mlp.down_proj.weight":            {64, 172},
	}
	for name, shape := range shapes {
		tn, ok := ck.Tensor(name)
		if !ok || !slices.Equal(tn.Shape, shape) || len(tn.Data) != prod(shape) {
			t.Errorf("%s: ok=%v shape %v (%d values), want %v", name, ok, tn.Shape, len(tn.Data), shape)
		}
	}
	if _, ok := ck.Tensor("lm_head.weight"); ok {
		t.Error("tied model has lm_head.weight")
	}
	total := 0
	for _, tn := range ck.Tensors {
		total += len(tn.Data)
	}
	if want := 259968 + 64; total != want { // every float but the RoPE tables
		t.Errorf("%d parameters, want %d", total, want)
	}
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// header builds a legacy header.
func header(h ...int32) []byte {
	var b []byte
	for _, v := range h {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func TestParse_Untied(t *testing.T) {
	// dim 4, hidden 6, 1 layer, 2 heads, 1 kv head, vocab 3 (untied), seq 2.
	cfg := Config{Dim: 4, HiddenDim: 6, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 3, SeqLen: 2}
	n := 0
	for _, s := range layout(cfg) {
		n += s.floats()
	}
	b := header(4, 6, 1, 2, 1, -3, 2)
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i)))
	}
	ck, err := Parse(b, Options{Interleaved: true})
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config != cfg {
		t.Fatalf("Config = %+v, want %+v", ck.Config, cfg)
	}
	lm, ok := ck.Tensor("lm_head.weight")
	if !ok || !slices.Equal(lm.Shape, []int{3, 4}) || lm.Data[0] != float32(n-12) || lm.Data[11] != float32(n-1) {
		t.Fatalf("lm_head.weight = %+v, %v; want the last 12 floats", lm, ok)
	}
	emb, _ := ck.Tensor("model.embed_tokens.weight")
	q, _ := ck.Tensor("model.layers.0.self_attn.q_proj.weight")
	if emb.Data[0] != 0 || q.Data[0] != float32(12+4) { // after embedding (12) and rms_att (4)
		t.Errorf("embedding starts %v, q_proj starts %v", emb.Data[0], q.Data[0])
	}
	var hf map[string]any
	if err := json.Unmarshal(ck.Config.HFConfigJSON(), &hf); err != nil || hf["tie_word_embeddings"] != false {
		t.Errorf("HF config %v, %v", hf, err)
	}
}

func TestParse_Errors(t *testing.T) {
	model := readModel(t)
	bad := func(i int, v int32) []byte {
		b := slices.Clone(model)
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short header", model[:20], "too short"},
		{"zero dim", bad(0, 0), "dim = 0"},
		{"negative layers", bad(2, -5), "n_layers = -5"},
		{"heads not dividing dim", bad(3, 7), "not a multiple"},
		{"kv heads not dividing heads", bad(4, 3), "n_kv_heads 3"},
		{"odd head size", bad(3, 64), "odd"},
		{"truncated", model[:len(model)-4], "implies 1056540"},
		{"trailing bytes", append(slices.Clone(model), 0, 0, 0, 0), "file has 1056544 bytes"},
		{"untied flag without classifier", bad(5, -512), "separate classifier"},
		{"huge sizes", bad(1, math.MaxInt32), "implies"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Load("does-not-exist.bin", Options{}); err == nil || !strings.Contains(err.Error(), "does-not-exist.bin") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestConfig_HFConfigJSON(t *testing.T) {
	cfg := Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, SeqLen: 512, Tied: true}
	var got map[string]any
	if err := json.Unmarshal(cfg.HFConfigJSON(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"model_type": "llama", "hidden_size": 64.0, "intermediate_size": 172.0, "num_attention_heads": 8.0,
		"num_key_value_heads": 4.0, "num_hidden_layers": 5.0, "vocab_size": 512.0, "max_position_embeddings": 512.0,
		"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 1.0,
		"eos_token_id": 2.0, "torch_dtype": "float32", "hidden_act": "silu", "head_dim": 8.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if arch, _ := got["architectures"].([]any); len(arch) != 1 || arch[0] != "LlamaForCausalLM" {
		t.Errorf("architectures = %v", got["architectures"])
	}
}

// BenchmarkParse_Stories260K measures loading the default model from memory
// (the embedded-asset path): go test -bench Parse ./internal/llama2c/
func BenchmarkParse_Stories260K(b *testing.B) {
	data := readModel(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad_Stories260K includes reading the file.
func BenchmarkLoad_Stories260K(b *testing.B) {
	for b.Loop() {
		if _, err := Load(modelPath, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
