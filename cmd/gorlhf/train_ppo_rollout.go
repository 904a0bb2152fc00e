package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/role/openai"
	"github.com/gorlhf/gorlhf/internal/train"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// rolloutAPIKeyEnv holds the bearer key of the external rollout engines
// (--rollout.backend openai); $GORLHF_API_KEY when unset.
const rolloutAPIKeyEnv = "GORLHF_ROLLOUT_API_KEY"

// registerRolloutBackend binds the external-engine flags of `train ppo`.
func registerRolloutBackend(b *cfgflag.Binder, r *ppo.RolloutConfig) {
	b.Var(&r.Backend, "rollout engine: gorlhf (in process) or openai (the OpenAI-compatible servers of --rollout.urls: gorlhf serve, vLLM, SGLang; docs/ROLLOUT.md)")
	b.Value(&r.URLs, urlList{&r.URLs}, "rollout engines' base URLs, comma-separated (--rollout.backend openai; bearer key from $"+rolloutAPIKeyEnv+")")
	b.Var(&r.WeightSync, "how weights reach the engines: disk (SGLang's /update_weights_from_disk, gorlhf serve) or vllm (vLLM's weight-transfer routes with gorlhf serve's disk backend)")
	b.Var(&r.SyncDir, "folder every engine can read where weight snapshots are written (default <output_dir>/rollout_sync)")
	b.Var(&r.RequestTimeout, "seconds one attempt of one prompt's request may take")
	b.Var(&r.MaxRetries, "retries of a failed request on its engine before it moves to another")
	b.Var(&r.ModelName, `"model" field of the requests (default: none, the engine's only model)`)
}

// openaiRollout builds the rollout role over the external engines of
// cfg; maxPositions is the policy's position limit (the engines serve the
// same model).
func openaiRollout(cfg ppo.Config, m model.CausalLM, logOut *os.File) (*openai.Rollout, int, error) {
	r := cfg.Rollout
	oc := openai.DefaultConfig()
	oc.URLs, oc.Model, oc.WeightSync = r.URLs, r.ModelName, r.WeightSync
	oc.Unversioned = r.WeightSync == openai.SyncVLLM // vLLM reports no weight version
	oc.SyncDir = r.SyncDir
	if oc.SyncDir == "" {
		oc.SyncDir = filepath.Join(cfg.Ckpt.OutputDir, "rollout_sync")
	}
	if abs, err := filepath.Abs(oc.SyncDir); err == nil { // the engines resolve it, not us
		oc.SyncDir = abs
	}
	oc.Timeout = time.Duration(r.RequestTimeout * float64(time.Second))
	oc.Attempts = r.MaxRetries + 1
	oc.APIKey, _ = apiKey("", rolloutAPIKeyEnv)
	var log *slog.Logger
	if logOut != nil {
		log = slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ro, err := openai.New(oc, log)
	if err != nil {
		return nil, 0, fmt.Errorf("--rollout.urls: %w", err)
	}
	limit := 0
	if d, ok := m.(model.Decoder); ok {
		limit = d.KVShape().MaxPositions
	}
	return ro, limit, nil
}

// withOpenAIRollout swaps the rollout for the external engines when the
// config asks for them; it returns a closer for the client.
func withOpenAIRollout(cfg ppo.Config, te train.Setup, set func(*openai.Rollout, int)) (func(), error) {
	if cfg.Rollout.Backend != ppo.BackendOpenAI {
		return func() {}, nil
	}
	ro, limit, err := openaiRollout(cfg, te.Model, os.Stderr)
	if err != nil {
		return nil, err
	}
	set(ro, limit)
	return func() { ro.Close() }, nil
}
