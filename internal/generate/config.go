package generate

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
)

// Config holds the engine's knobs. Start from DefaultConfig; zero fields
// mean their default.
type Config struct {
	// KVCacheMB is the KV-cache budget in MiB (all layers, K and V); 0
	// means 1024. Pages are touched only as blocks are used.
	KVCacheMB int
	// KVBlocks sets the number of KV blocks directly (tests, exact
	// budgets); 0 means as many as KVCacheMB holds.
	KVBlocks int
	// BlockSize is the number of tokens per KV block; 0 means 16.
	BlockSize int
	// MaxSeqs is the most sequences decoded in one step; 0 means 512.
	MaxSeqs int
	// MaxBatchTokens is the most new tokens per step: decode tokens first,
	// then prompt chunks (chunked prefill) fill the rest; 0 means 2048.
	MaxBatchTokens int
	// MaxPrefillChunk is the most prompt tokens one sequence feeds in a
	// step before every other sequence waiting for prefill has had its
	// share; what they leave of MaxBatchTokens then goes to the oldest.
	// It keeps one long prompt from holding back the prompts that arrive
	// after it. 0 means MaxBatchTokens/4.
	MaxPrefillChunk int
	// NoPrefixSharing gives every sample its own copy of the prompt's KV
	// (prefilled n times); false (the default) prefills a prompt once and
	// lets its n samples share the blocks, copy-on-write.
	NoPrefixSharing bool
	// PrefixCaching keeps full KV blocks after their request ends, found
	// by a chain hash of the tokens they end (vLLM's automatic prefix
	// caching, OpenRLHF's --vllm.enable_prefix_caching): a later request
	// whose prompt starts with a cached prefix skips prefilling it. Idle
	// cached blocks are evicted least-recently-used when blocks run out,
	// and all are forgotten on LoadWeights. Tokens match the engine without
	// it; log-probs move by float rounding only (a prefix computed in
	// another batch). false (the default) keeps every request's prefill.
	PrefixCaching bool
	// EOS are token ids that end every sample unless a request sets
	// IgnoreEOS; nil means none.
	EOS []int32
	// DType is the format the model's weight matrices are read in while
	// decoding (vLLM's --dtype): F32 (the default) reads the parameters;
	// BF16 or F16 keep a 16-bit copy, converted at New and after every
	// LoadWeights, and widen it to f32 inside the kernels (package half).
	// The parameters stay f32. The model must be a model.StepDTyper.
	DType half.DType
}

// DefaultConfig returns the defaults spelled out (MaxPrefillChunk stays 0:
// it follows MaxBatchTokens).
func DefaultConfig() Config {
	return Config{KVCacheMB: 1024, BlockSize: 16, MaxSeqs: 512, MaxBatchTokens: 2048}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.KVCacheMB == 0 {
		c.KVCacheMB = d.KVCacheMB
	}
	if c.BlockSize == 0 {
		c.BlockSize = d.BlockSize
	}
	if c.MaxSeqs == 0 {
		c.MaxSeqs = d.MaxSeqs
	}
	if c.MaxBatchTokens == 0 {
		c.MaxBatchTokens = d.MaxBatchTokens
	}
	if c.MaxPrefillChunk == 0 {
		c.MaxPrefillChunk = max(1, c.MaxBatchTokens/4)
	}
	return c
}

// Validate checks ranges (zero fields are fine: they take defaults).
func (c Config) Validate() error {
	switch {
	case c.KVBlocks < 0:
		return fmt.Errorf("generate: KVBlocks must be ≥ 0, got %d", c.KVBlocks)
	case c.KVCacheMB < 0:
		return fmt.Errorf("generate: KVCacheMB must be ≥ 1, got %d", c.KVCacheMB)
	case c.BlockSize < 0 || c.BlockSize > 4096:
		return fmt.Errorf("generate: BlockSize must be in [1, 4096], got %d", c.BlockSize)
	case c.MaxSeqs < 0:
		return fmt.Errorf("generate: MaxSeqs must be ≥ 1, got %d", c.MaxSeqs)
	case c.MaxBatchTokens < 0:
		return fmt.Errorf("generate: MaxBatchTokens must be ≥ 1, got %d", c.MaxBatchTokens)
	case c.MaxPrefillChunk < 0:
		return fmt.Errorf("generate: MaxPrefillChunk must be ≥ 1, got %d", c.MaxPrefillChunk)
	case c.DType > half.F16:
		return fmt.Errorf("generate: DType must be f32, bf16 or f16, got %v", c.DType)
	}
	return nil
}

// numBlocks is how many blocks the budget holds for a model.
func (c Config) numBlocks(s model.KVShape) int {
	if c.KVBlocks > 0 {
		return c.KVBlocks
	}
	return int(int64(c.KVCacheMB) << 20 / int64(BlockBytes(s, c.BlockSize)))
}
