package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/lora"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// Files of a checkpoint folder besides the Hugging Face model files
// (config.json, model.safetensors, tokenizer).
const (
	StateFile     = "trainer_state.json"
	OptimizerFile = "optimizer.safetensors"
	// ZeroDir holds a data-parallel run's ZeRO shards of the training
	// state (package zero's format) in place of OptimizerFile.
	ZeroDir = "zero"
	// LatestFile in the checkpoint root names the newest complete
	// checkpoint, as DeepSpeed's "latest" does.
	LatestFile = "latest"
	tagPrefix  = "global_step"
	// stateFormat is the trainer_state.json layout version.
	stateFormat = 1
)

// State is what a checkpoint saves besides weights and optimizer moments:
// everything else the next step depends on.
type State struct {
	Format int         `json:"format"`
	Step   int         `json:"step"`   // optimizer steps done (skipped non-finite steps included)
	Cursor data.Cursor `json:"cursor"` // where the data stream stands
	RNG    []byte      `json:"rng"`    // the run's PCG state (base64)
	// NonFiniteRun is the current run of consecutive non-finite steps,
	// NonFiniteTotal all of them.
	NonFiniteRun   int `json:"nonfinite_run"`
	NonFiniteTotal int `json:"nonfinite_total"`
	// Config is the trainer's full configuration as JSON.
	Config json.RawMessage `json:"config"`
	// Extra is trainer-specific state (e.g. a reward model's normalisation).
	Extra json.RawMessage `json:"extra,omitempty"`
	Saved time.Time       `json:"saved"`
}

// Model is the network a checkpoint (or the final output) stores as a
// Hugging Face folder.
type Model struct {
	Module model.CausalLM
	Config []byte            // its config.json (see load.Save)
	Files  map[string][]byte // extra files written verbatim, e.g. the tokenizer
	// Adapters, when set, are LoRA adapters on the frozen Module: the
	// model is then saved as a PEFT adapter folder (as OpenRLHF's
	// save_model does for a PeftModel), trained on the model Base names.
	Adapters *lora.Adapters
	Base     string
}

// SaveModel writes m, with its files, as a Hugging Face folder dir
// (weights in F32). A model dir already holds stays whole and loadable
// until the new one is complete on disk (load.SaveWith). A model with
// adapters is written as a PEFT adapter folder instead
// (adapter_config.json, adapter_model.safetensors and the files; no
// config.json, which would make the folder look like a whole model).
func SaveModel(dir string, m Model) error {
	if m.Adapters != nil {
		return m.Adapters.Save(dir, m.Base, m.Files)
	}
	return load.SaveWith(dir, m.Module, m.Config, safetensors.F32, m.Files)
}

// Tag is the folder name of the checkpoint of a step.
func Tag(step int) string { return fmt.Sprintf("%s%d", tagPrefix, step) }

// SaveCheckpoint writes a checkpoint of step st.Step under root, then keeps
// only the newest keep checkpoints. The folder is filled under a temporary
// name, synced, and renamed into place, and only then does LatestFile move
// to it: a crash at any point leaves the previous checkpoint complete and
// named by LatestFile. It returns the new folder.
func SaveCheckpoint(root string, m Model, opt *optim.AdamW, st State, keep int) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	tag := Tag(st.Step)
	tmp, err := os.MkdirTemp(root, "."+tag+".tmp-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := fillCheckpoint(tmp, m, opt, st); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", tag, err)
	}
	return commitCheckpoint(root, tmp, tag, keep)
}

// commitCheckpoint renames the filled folder tmp to root/tag, points
// LatestFile at it and prunes to the newest keep checkpoints.
func commitCheckpoint(root, tmp, tag string, keep int) (string, error) {
	dir := filepath.Join(root, tag)
	if err := replaceDir(tmp, dir); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", tag, err)
	}
	if err := writeFileSync(filepath.Join(root, LatestFile), []byte(tag+"\n")); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", tag, err)
	}
	if err := prune(root, keep, tag); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	return dir, nil
}

// fillCheckpoint writes the model, the optimizer and the state into dir.
func fillCheckpoint(dir string, m Model, opt *optim.AdamW, st State) error {
	if err := SaveModel(dir, m); err != nil {
		return err
	}
	if err := saveOptimizer(filepath.Join(dir, OptimizerFile), opt.State()); err != nil {
		return err
	}
	return writeState(dir, st)
}

// writeState writes StateFile, the file whose presence makes a
// checkpoint folder complete, and syncs the folder.
func writeState(dir string, st State) error {
	st.Format, st.Saved = stateFormat, time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, StateFile), b); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// saveOptimizer stores AdamW's moments as exp_avg.<param> and
// exp_avg_sq.<param> (torch's state names) and its step count.
func saveOptimizer(path string, s optim.State) error {
	ts := make([]safetensors.Tensor, 0, 2*len(s.Names))
	for i, name := range s.Names {
		ts = append(ts,
			safetensors.Tensor{Name: "exp_avg." + name, Shape: []int{len(s.M[i])}, Data: s.M[i]},
			safetensors.Tensor{Name: "exp_avg_sq." + name, Shape: []int{len(s.V[i])}, Data: s.V[i]})
	}
	names, _ := json.Marshal(s.Names)
	meta := map[string]string{"step": strconv.Itoa(s.Step), "params": string(names)}
	return safetensors.Write(path, ts, safetensors.F32, meta)
}

// replaceDir renames src to dst; an existing dst (the same step saved
// again after a resume) is moved aside first and removed after.
func replaceDir(src, dst string) error {
	old := ""
	if _, err := os.Stat(dst); err == nil {
		old = src + ".old"
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	syncDir(filepath.Dir(dst))
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// prune removes all but the newest keep checkpoints (never current) and
// leftovers of interrupted saves.
func prune(root string, keep int, current string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var steps []int
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "."+tagPrefix) && strings.Contains(name, ".tmp-") {
			_ = os.RemoveAll(filepath.Join(root, name))
			continue
		}
		if step, ok := parseTag(name); ok && e.IsDir() {
			steps = append(steps, step)
		}
	}
	slices.Sort(steps)
	for i := 0; i < len(steps)-keep; i++ {
		if tag := Tag(steps[i]); tag != current {
			if err := os.RemoveAll(filepath.Join(root, tag)); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseTag(name string) (int, bool) {
	if !strings.HasPrefix(name, tagPrefix) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, tagPrefix))
	return n, err == nil && n >= 0
}

// LatestCheckpoint returns the newest complete checkpoint folder under
// root, or "" when there is none. It trusts LatestFile when it names a
// complete folder and otherwise takes the highest complete step.
func LatestCheckpoint(root string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(root, LatestFile)); err == nil {
		dir := filepath.Join(root, strings.TrimSpace(string(b)))
		if complete(dir) {
			return dir, nil
		}
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	best, bestStep := "", -1
	for _, e := range entries {
		if step, ok := parseTag(e.Name()); ok && step > bestStep && complete(filepath.Join(root, e.Name())) {
			best, bestStep = filepath.Join(root, e.Name()), step
		}
	}
	return best, nil
}

// Checkpoints lists the complete checkpoint folders under root, newest
// first, the one LatestFile names ahead of the rest: a resume tries them
// in this order and takes the first that loads (a checkpoint can be
// complete by name yet damaged, e.g. truncated by a copy or a disk).
func Checkpoints(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var steps []int
	for _, e := range entries {
		if step, ok := parseTag(e.Name()); ok && complete(filepath.Join(root, e.Name())) {
			steps = append(steps, step)
		}
	}
	slices.Sort(steps)
	slices.Reverse(steps)
	var out []string
	if latest, err := LatestCheckpoint(root); err == nil && latest != "" {
		out = append(out, latest)
	}
	for _, step := range steps {
		if dir := filepath.Join(root, Tag(step)); !slices.Contains(out, dir) {
			out = append(out, dir)
		}
	}
	return out, nil
}

// complete reports whether dir holds a whole checkpoint (the state file is
// written last, and the folder only gets its name once complete).
func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, StateFile))
	return err == nil
}

// LoadCheckpoint restores params (by name, bit for bit) and the optimizer
// from dir and returns the saved state.
func LoadCheckpoint(dir string, params nn.Params, opt *optim.AdamW) (State, error) {
	st, err := readState(dir)
	if err != nil {
		return st, err
	}
	if _, err := os.Stat(filepath.Join(dir, ZeroDir)); err == nil {
		return st, fmt.Errorf("checkpoint: %s holds ZeRO shards (%s/), saved by a data-parallel run: it resumes through the sharding engine (--ds.zero_stage ≥ 1, or the same --launcher)", dir, ZeroDir)
	}
	if err := loadWeights(dir, params); err != nil {
		return st, err
	}
	if err := loadOptimizer(filepath.Join(dir, OptimizerFile), params, opt); err != nil {
		return st, err
	}
	return st, nil
}

// readState reads a checkpoint's StateFile.
func readState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("checkpoint: %s: %w", filepath.Join(dir, StateFile), err)
	}
	if st.Format != stateFormat {
		return st, fmt.Errorf("checkpoint: %s: format %d, this build reads %d", dir, st.Format, stateFormat)
	}
	return st, nil
}

// loadWeights copies every parameter from the checkpoint's weights: the
// model file, or in a LoRA checkpoint the adapter file (PEFT's names,
// lora.Prefix before the parameter's).
func loadWeights(dir string, params nn.Params) error {
	path, prefix := filepath.Join(dir, safetensors.SingleName), ""
	if _, err := os.Stat(filepath.Join(dir, lora.WeightsFile)); err == nil {
		path, prefix = filepath.Join(dir, lora.WeightsFile), lora.Prefix
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	for _, p := range params {
		if err := readInto(f, prefix+p.Name, p.Tensor.Data); err != nil {
			return fmt.Errorf("checkpoint: %s: %w", path, err)
		}
	}
	return nil
}

// loadOptimizer restores AdamW's moments and step count.
func loadOptimizer(path string, params nn.Params, opt *optim.AdamW) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	step, err := strconv.Atoi(f.Metadata()["step"])
	if err != nil {
		return fmt.Errorf("checkpoint: %s: bad step metadata: %w", path, err)
	}
	s := optim.State{Step: step}
	for _, p := range params {
		m, v := make([]float32, p.Tensor.Numel()), make([]float32, p.Tensor.Numel())
		if err := readInto(f, "exp_avg."+p.Name, m); err != nil {
			return fmt.Errorf("checkpoint: %s: %w", path, err)
		}
		if err := readInto(f, "exp_avg_sq."+p.Name, v); err != nil {
			return fmt.Errorf("checkpoint: %s: %w", path, err)
		}
		s.Names, s.M, s.V = append(s.Names, p.Name), append(s.M, m), append(s.V, v)
	}
	return opt.LoadState(s)
}

// readInto copies tensor name into dst, which must have its exact size.
func readInto(f *safetensors.File, name string, dst []float32) error {
	vals, shape, err := f.Float32(name)
	if err != nil {
		return err
	}
	if len(vals) != len(dst) {
		return fmt.Errorf("tensor %q has %d values %v, want %d", name, len(vals), shape, len(dst))
	}
	copy(dst, vals)
	return nil
}

// writeFileSync writes a file through a temporary name, syncs and renames it.
func writeFileSync(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir flushes a folder's entries (best effort: not every OS can).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
