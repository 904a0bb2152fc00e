package openai

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Weight-sync protocols (Config.WeightSync).
const (
	// SyncDisk writes a safetensors snapshot to Config.SyncDir and calls
	// every engine's POST /update_weights_from_disk (gorlhf serve,
	// SGLang), between /pause?mode=wait and /resume.
	SyncDisk = "disk"
	// SyncVLLM drives vLLM's weight-transfer routes
	// (/init_weight_transfer_engine once, then /start_weight_update,
	// /update_weights, /finish_weight_update) with the "disk" backend
	// gorlhf serve implements: update_info names the snapshot written to
	// SyncDir with the tensors' names, dtypes and shapes. A real vLLM
	// server moves these bytes over NCCL instead; that sender needs a GPU
	// and is not written (docs/ROLLOUT.md).
	SyncVLLM = "vllm"
)

// Config says where the engines are and how they are driven.
type Config struct {
	// URLs are the engines' base addresses (http://host:port, without
	// /v1), at least one.
	URLs []string
	// APIKey is sent as "Authorization: Bearer APIKey" when set.
	APIKey string
	// Model is the "model" field of every request; "" leaves it out (the
	// engine's only model).
	Model string
	// Timeout bounds one attempt of one prompt's request; Attempts is the
	// tries per engine before the prompt moves to another engine.
	Timeout  time.Duration
	Attempts int
	// Backoff is the wait before the first retry on an engine (doubling,
	// up to ten times it).
	Backoff time.Duration
	// MaxInflight bounds the requests outstanding at one engine (each is
	// one prompt with its n samples).
	MaxInflight int
	// WeightSync is SyncDisk or SyncVLLM; SyncDir is the folder every
	// engine can read where snapshots are written (one at a time: the
	// previous one is removed after a successful sync).
	WeightSync string
	SyncDir    string
	// SyncTimeout bounds each call of a weight sync (loading waits for
	// the engine's running requests).
	SyncTimeout time.Duration
	// Unversioned accepts answers without a weight_version (vLLM reports
	// none): the client then relies on its own ordering, no request being
	// in flight while weights load. gorlhf serve and SGLang report it,
	// and then it must equal the version last pushed.
	Unversioned bool
}

// DefaultConfig returns the defaults; URLs and SyncDir must still be set.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Minute, Attempts: 3, Backoff: 200 * time.Millisecond, MaxInflight: 64,
		WeightSync: SyncDisk, SyncTimeout: 10 * time.Minute}
}

// Validate checks every field.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("openai: "+format, args...)) }
	if len(c.URLs) == 0 {
		add("no engine URL")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("engine URL %q: want http://host:port", u)
		}
	}
	if c.Timeout <= 0 || c.SyncTimeout <= 0 {
		add("timeouts must be positive, got %v and %v (sync)", c.Timeout, c.SyncTimeout)
	}
	if c.Attempts < 1 || c.MaxInflight < 1 || c.Backoff < 0 {
		add("attempts %d and max in-flight %d must be ≥ 1, backoff %v ≥ 0", c.Attempts, c.MaxInflight, c.Backoff)
	}
	switch c.WeightSync {
	case SyncDisk, SyncVLLM:
	default:
		add("weight sync %q: want %s or %s", c.WeightSync, SyncDisk, SyncVLLM)
	}
	if c.SyncDir == "" {
		add("no sync folder for weight snapshots")
	}
	return errors.Join(errs...)
}
