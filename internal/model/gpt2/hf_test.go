package gpt2

import "testing"

// TestParseHF checks GPT2Config's defaults for fields a config.json may
// leave out, and that the spec builds the model it describes.
func TestParseHF(t *testing.T) {
	sp, warnings, err := ParseHF([]byte(`{"architectures": ["GPT2LMHeadModel"], "vocab_size": 5, "n_positions": 4, "n_embd": 4, "n_layer": 1, "n_head": 2}`), false)
	if err != nil {
		t.Fatal(err)
	}
	c := sp.(Config)
	if c.LayerNormEps != 1e-5 || c.MaxPositions != 4 || len(warnings) != 0 {
		t.Errorf("%+v %q", c, warnings)
	}
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec() != sp || m.Dims().MaxPositions != 4 || m.Dims().Vocab != 5 {
		t.Errorf("model spec %+v dims %+v", m.Spec(), m.Dims())
	}
}
