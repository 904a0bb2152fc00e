package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// SyncStats describe the last weight sync.
type SyncStats struct {
	Version int64
	Bytes   int64         // the snapshot's size on disk
	Write   time.Duration // writing the snapshot
	Load    time.Duration // the engines' pause, load and resume (in parallel)
}

// LastSync returns the stats of the last successful weight sync.
func (r *Rollout) LastSync() SyncStats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.last
}

// versionKey is the snapshot's metadata entry naming its version (the
// same key internal/transfer writes).
const versionKey = "gorlhf.weights.version"

// LoadWeights implements role.Rollout: it waits for the Generate calls in
// flight, writes w as a safetensors snapshot (F32, tensors sorted by
// name) to Config.SyncDir atomically, then has every engine load it
// (between /pause?mode=wait and /resume) by Config.WeightSync's protocol.
// An engine that cannot be reached (httpjson.Transient) is retired: it is
// never asked again, since it may hold older weights; any other failure
// (the engine refuses the snapshot) fails the call, as does having no
// engine left. The previous snapshot is removed once the engines hold the
// new one.
func (r *Rollout) LoadWeights(ctx context.Context, w role.Weights) error {
	if w.Version < 1 {
		return fmt.Errorf("openai: rollout: weight version %d must be ≥ 1 (0 is the initial policy)", w.Version)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	path, size, err := r.writeSnapshot(w)
	if err != nil {
		return err
	}
	written := time.Now()
	errs := make([]error, len(r.urls))
	var wg sync.WaitGroup
	for e := range r.urls {
		if !r.retired[e] {
			wg.Go(func() { errs[e] = r.syncEngine(ctx, e, path, w) })
		}
	}
	wg.Wait()
	if err := r.retire(errs); err != nil {
		return fmt.Errorf("openai: rollout: weight version %d: %w", w.Version, err)
	}
	r.inited = true
	if r.synced != "" && r.synced != path {
		_ = os.Remove(r.synced)
	}
	r.synced, r.version = path, w.Version
	r.last = SyncStats{Version: w.Version, Bytes: size, Write: written.Sub(start), Load: time.Since(written)}
	r.log.Info("openai: weights pushed", "weight_version", w.Version, "bytes", size, "write", r.last.Write, "load", r.last.Load)
	return nil
}

// writeSnapshot writes w under SyncDir (atomically: a temporary file
// renamed) and returns its path and size.
func (r *Rollout) writeSnapshot(w role.Weights) (string, int64, error) {
	if err := os.MkdirAll(r.cfg.SyncDir, 0o755); err != nil {
		return "", 0, fmt.Errorf("openai: rollout: sync folder: %w", err)
	}
	ts := make([]safetensors.Tensor, len(w.Params))
	for i, p := range w.Params {
		ts[i] = safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Data}
	}
	path := filepath.Join(r.cfg.SyncDir, fmt.Sprintf("weights-v%d.safetensors", w.Version))
	meta := map[string]string{"format": "pt", versionKey: strconv.FormatInt(w.Version, 10)}
	if err := safetensors.Write(path, ts, safetensors.F32, meta); err != nil {
		return "", 0, fmt.Errorf("openai: rollout: write weight version %d: %w", w.Version, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, fmt.Errorf("openai: rollout: %w", err)
	}
	return path, st.Size(), nil
}

// syncEngine has engine e load the snapshot at path as w.Version.
func (r *Rollout) syncEngine(ctx context.Context, e int, path string, w role.Weights) (err error) {
	base := r.urls[e]
	if err := r.control(ctx, base+"/pause?mode=wait", nil, nil); err != nil {
		return fmt.Errorf("engine %s: pause: %w", base, err)
	}
	defer func() { // resume even when the load failed: the old weights serve on
		if rerr := r.control(context.WithoutCancel(ctx), base+"/resume", nil, nil); rerr != nil && err == nil {
			err = fmt.Errorf("engine %s: resume: %w", base, rerr)
		}
	}()
	switch r.cfg.WeightSync {
	case SyncVLLM:
		return r.syncVLLM(ctx, base, path, w)
	default:
		return r.syncDisk(ctx, base, path, w.Version)
	}
}

// syncDisk is SGLang's /update_weights_from_disk.
func (r *Rollout) syncDisk(ctx context.Context, base, path string, version int64) error {
	body := map[string]any{"model_path": path, "weight_version": strconv.FormatInt(version, 10)}
	var ans struct {
		Success       *bool           `json:"success"`
		Message       string          `json:"message"`
		WeightVersion json.RawMessage `json:"weight_version"`
	}
	if err := r.control(ctx, base+"/update_weights_from_disk", body, &ans); err != nil {
		return fmt.Errorf("engine %s: update_weights_from_disk: %w", base, err)
	}
	if ans.Success == nil || !*ans.Success {
		return fmt.Errorf("engine %s: update_weights_from_disk: not loaded: %s", base, ans.Message)
	}
	return checkVersion(base, ans.WeightVersion, version)
}

// syncVLLM drives vLLM's weight-transfer routes with the disk backend.
func (r *Rollout) syncVLLM(ctx context.Context, base, path string, w role.Weights) error {
	if !r.inited {
		init := map[string]any{"init_info": map[string]any{"backend": "disk"}}
		if err := r.control(ctx, base+"/init_weight_transfer_engine", init, nil); err != nil {
			return fmt.Errorf("engine %s: init_weight_transfer_engine: %w", base, err)
		}
	}
	if err := r.control(ctx, base+"/start_weight_update", map[string]any{"is_checkpoint_format": true}, nil); err != nil {
		return fmt.Errorf("engine %s: start_weight_update: %w", base, err)
	}
	names, dtypes, shapes := make([]string, len(w.Params)), make([]string, len(w.Params)), make([][]int, len(w.Params))
	for i, p := range w.Params {
		names[i], dtypes[i], shapes[i] = p.Name, "float32", p.Shape
	}
	info := map[string]any{"model_path": path, "names": names, "dtype_names": dtypes, "shapes": shapes,
		"weight_version": strconv.FormatInt(w.Version, 10)}
	if err := r.control(ctx, base+"/update_weights", map[string]any{"update_info": info}, nil); err != nil {
		return fmt.Errorf("engine %s: update_weights: %w", base, err)
	}
	var ans struct {
		WeightVersion json.RawMessage `json:"weight_version"`
	}
	if err := r.control(ctx, base+"/finish_weight_update", nil, &ans); err != nil {
		return fmt.Errorf("engine %s: finish_weight_update: %w", base, err)
	}
	if len(ans.WeightVersion) == 0 && r.cfg.Unversioned {
		return nil // vLLM reports no version
	}
	return checkVersion(base, ans.WeightVersion, w.Version)
}

// checkVersion verifies the version an engine says it loaded.
func checkVersion(base string, raw json.RawMessage, want int64) error {
	v, err := parseVersion(raw)
	if err != nil {
		return fmt.Errorf("engine %s: %w", base, err)
	}
	if v != want {
		return fmt.Errorf("engine %s: loaded weight version %d, not %d", base, v, want)
	}
	return nil
}

// control POSTs body (nil: no body) to url and decodes a JSON answer into
// out (nil: any answer).
func (r *Rollout) control(ctx context.Context, url string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return r.ctl.Post(ctx, url, data, func(_ string, ans []byte) error {
		if out == nil {
			return nil
		}
		return json.Unmarshal(ans, out)
	})
}

// retire retires the engines whose sync failed transiently and returns
// the other failures, or an error when no engine is left.
func (r *Rollout) retire(errs []error) error {
	var hard []error
	for e, err := range errs {
		switch {
		case err == nil:
		case httpjson.Transient(err):
			r.retired[e] = true
			r.log.Warn("openai: rollout engine unreachable at a weight sync; it is left out from now on", "engine", r.urls[e], "err", err)
		default:
			hard = append(hard, err)
		}
	}
	if err := errors.Join(hard...); err != nil {
		return err
	}
	if !slices.Contains(r.retired, false) {
		return fmt.Errorf("no engine left: %w", errors.Join(errs...))
	}
	return nil
}
