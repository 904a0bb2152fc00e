package llama2c

import "encoding/json"

// HFConfig is the Hugging Face config.json of a LlamaForCausalLM. Fields
// follow transformers' LlamaConfig names.
type HFConfig struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	HeadDim               int      `json:"head_dim"`
	VocabSize             int      `json:"vocab_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	HiddenAct             string   `json:"hidden_act"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	AttentionBias         bool     `json:"attention_bias"`
	MLPBias               bool     `json:"mlp_bias"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	BOSTokenID            int      `json:"bos_token_id"`
	EOSTokenID            int      `json:"eos_token_id"`
	TorchDType            string   `json:"torch_dtype"`
}

// llama2.c fixes these in run.c rather than storing them in the file.
const (
	RMSNormEps = 1e-5
	RopeTheta  = 10000
	BOS        = 1
	EOS        = 2
)

// HFConfig returns the config.json that describes this model to
// transformers (the weights must be permuted, the Parse default).
func (c Config) HFConfig() HFConfig {
	return HFConfig{
		Architectures:         []string{"LlamaForCausalLM"},
		ModelType:             "llama",
		HiddenSize:            c.Dim,
		IntermediateSize:      c.HiddenDim,
		NumAttentionHeads:     c.Heads,
		NumKeyValueHeads:      c.KVHeads,
		NumHiddenLayers:       c.Layers,
		HeadDim:               c.HeadDim(),
		VocabSize:             c.Vocab,
		MaxPositionEmbeddings: c.SeqLen,
		HiddenAct:             "silu",
		RMSNormEps:            RMSNormEps,
		RopeTheta:             RopeTheta,
		TieWordEmbeddings:     c.Tied,
		BOSTokenID:            BOS,
		EOSTokenID:            EOS,
		TorchDType:            "float32",
	}
}

// HFConfigJSON returns HFConfig as indented JSON with a final newline,
// ready to write as config.json.
func (c Config) HFConfigJSON() []byte {
	b, err := json.MarshalIndent(c.HFConfig(), "", "  ")
	if err != nil {
		panic("llama2c: marshal HFConfig: " + err.Error()) // plain struct: cannot fail
	}
	return append(b, '\n')
}
