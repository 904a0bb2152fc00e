package ppo

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gorlhf/gorlhf/internal/half"
)

// The rollout section of Config (--rollout.*): generation in process or
// through external engines, and its checks.

// RolloutConfig is generation.
type RolloutConfig struct {
	BatchSize    int     `flag:"batch_size"`     // prompts per iteration
	MaxNewTokens int     `flag:"max_new_tokens"` // response budget
	Temperature  float64 `flag:"temperature"`    // sampling temperature
	TopP         float64 `flag:"top_p"`          // nucleus sampling mass; 1 = off
	TopK         int     `flag:"top_k"`          // top-k sampling; 0 = off
	// MicroBatchSize bounds the sequences of one inference pass of the
	// actor, critic and reference (--rollout.micro_batch_size); 0 = all.
	MicroBatchSize int `flag:"micro_batch_size"`
	KVCacheMB      int `flag:"kv_cache_mb"` // the engine's KV-cache budget; 0 = 1024
	// EnablePrefixCaching keeps full KV blocks across generate calls and
	// reuses them for prompts with the same prefix (OpenRLHF's
	// --vllm.enable_prefix_caching): multi-turn episodes and long shared
	// prompts skip most of their prefill. Off keeps today's prefill.
	EnablePrefixCaching bool `flag:"enable_prefix_caching"`
	// Stop strings end a response (besides EOS) as soon as its text
	// contains one (--rollout.stop); the token that completed it stays in
	// the response, as an EOS does. In multi-turn episodes it is how an
	// action ends without an EOS in mid-conversation.
	Stop []string `flag:"stop"`
	// External engines (role/openai, docs/ROLLOUT.md): Backend "gorlhf"
	// generates in process, "openai" through the OpenAI-compatible
	// servers at URLs (gorlhf serve, vLLM, SGLang), each request retried
	// MaxRetries times and bounded by RequestTimeout seconds per attempt;
	// weights reach them by WeightSync ("disk": SGLang's
	// /update_weights_from_disk; "vllm": vLLM's weight-transfer routes)
	// through snapshots in SyncDir ("" = <output_dir>/rollout_sync).
	Backend        string   `flag:"backend"`
	URLs           []string `flag:"urls"`
	WeightSync     string   `flag:"weight_sync"`
	SyncDir        string   `flag:"sync_dir"`
	RequestTimeout float64  `flag:"request_timeout"`
	MaxRetries     int      `flag:"max_retries"`
	ModelName      string   `flag:"model_name"`
	// DType is the format the rollout engine reads the policy's weight
	// matrices in (--rollout.dtype, vLLM's --dtype): f32 (the default),
	// bf16 or f16, converted from the actor's f32 weights at every sync;
	// training keeps f32.
	DType string `flag:"dtype"`
}

// Rollout backends (RolloutConfig.Backend).
const (
	BackendGorlhf = "gorlhf"
	BackendOpenAI = "openai"
)

func (c Config) validateRollout() error {
	r := c.Rollout
	var errs []error
	if r.BatchSize < 1 || r.MaxNewTokens < 1 {
		errs = append(errs, fmt.Errorf("ppo: %s (%d) and %s (%d) must be ≥ 1", c.flag(&c.Rollout.BatchSize), r.BatchSize, c.flag(&c.Rollout.MaxNewTokens), r.MaxNewTokens))
	}
	if _, err := half.ParseDType(r.DType); err != nil {
		errs = append(errs, fmt.Errorf("ppo: %s: %w", c.flag(&c.Rollout.DType), err))
	}
	if slices.Contains(r.Stop, "") {
		errs = append(errs, fmt.Errorf("ppo: %s: a stop string must not be empty", c.flag(&c.Rollout.Stop)))
	}
	if !(r.Temperature >= 0) || !(r.TopP > 0 && r.TopP <= 1) || r.TopK < 0 || r.MicroBatchSize < 0 || r.KVCacheMB < 0 {
		errs = append(errs, fmt.Errorf("ppo: bad rollout sampling: temperature %g (≥ 0), top_p %g (in (0, 1]), top_k %d, micro_batch_size %d, kv_cache_mb %d (≥ 0)",
			r.Temperature, r.TopP, r.TopK, r.MicroBatchSize, r.KVCacheMB))
	}
	return errors.Join(append(errs, c.validateBackend())...)
}

// validateBackend checks the external-engine flags.
func (c Config) validateBackend() error {
	r := c.Rollout
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ppo: "+format, args...)) }
	switch r.Backend {
	case BackendGorlhf:
		if len(r.URLs) > 0 {
			add("%s needs %s %s", c.flag(&c.Rollout.URLs), c.flag(&c.Rollout.Backend), BackendOpenAI)
		}
	case BackendOpenAI:
		if len(r.URLs) == 0 {
			add("%s %s needs %s (the engines' base URLs, comma-separated)", c.flag(&c.Rollout.Backend), BackendOpenAI, c.flag(&c.Rollout.URLs))
		}
		if r.EnablePrefixCaching || r.KVCacheMB != 0 {
			add("%s and %s configure the in-process engine; with %s %s set them on the servers", c.flag(&c.Rollout.EnablePrefixCaching),
				c.flag(&c.Rollout.KVCacheMB), c.flag(&c.Rollout.Backend), BackendOpenAI)
		}
	default:
		add("%s %q: want %s or %s", c.flag(&c.Rollout.Backend), r.Backend, BackendGorlhf, BackendOpenAI)
	}
	if r.WeightSync != "disk" && r.WeightSync != "vllm" {
		add("%s %q: want disk or vllm", c.flag(&c.Rollout.WeightSync), r.WeightSync)
	}
	if !(r.RequestTimeout > 0) || r.MaxRetries < 0 {
		add("%s %g must be > 0 and %s %d ≥ 0", c.flag(&c.Rollout.RequestTimeout), r.RequestTimeout, c.flag(&c.Rollout.MaxRetries), r.MaxRetries)
	}
	return errors.Join(errs...)
}
