package llama

import (
	"encoding/json"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// goldenConfig mirrors the golden file's Hugging Face config fields.
type goldenConfig struct {
	Config
	QKNorm      bool `json:"qk_norm"`
	RopeScaling *struct {
		Type           string  `json:"rope_type"`
		Factor         float64 `json:"factor"`
		LowFreqFactor  float64 `json:"low_freq_factor"`
		HighFreqFactor float64 `json:"high_freq_factor"`
		OriginalMax    int     `json:"original_max_position_embeddings"`
	} `json:"rope_scaling"`
}

// TestModel_Golden compares logits, loss and every gradient with PyTorch
// 1.13 for a GQA model with Qwen2 biases, Qwen3 q/k norms and Llama-3 RoPE
// scaling, and for a tied-embedding model with three samples packed into
// one row (block-diagonal mask, positions restarting).
func TestModel_Golden(t *testing.T) {
	for _, name := range []string{"llama_gqa", "llama_packed"} {
		t.Run(name, func(t *testing.T) {
			var c modeltest.Case
			modeltest.Load(t, name, &c)
			var g goldenConfig
			if err := json.Unmarshal(c.Config, &g); err != nil {
				t.Fatal(err)
			}
			cfg := g.Config
			cfg.QKNorm = g.QKNorm
			if s := g.RopeScaling; s != nil {
				cfg.RopeScaling = &tensor.RoPEScaling{Type: s.Type, Factor: s.Factor, LowFreqFactor: s.LowFreqFactor,
					HighFreqFactor: s.HighFreqFactor, OriginalMaxPositions: s.OriginalMax}
			}
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetParams(m.Params()); err != nil {
				t.Fatal(err)
			}
			ids, _, pos, b, tl := c.Flat()
			c.Check(t, m.Params(), func(tp *tensor.Tape) *tensor.Tensor { return m.Forward(tp, ids, pos, c.Seg, b, tl) }, 1e-5, 1e-4)
		})
	}
}
