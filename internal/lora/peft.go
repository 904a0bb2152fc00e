package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// The files of a PEFT adapter folder, and the prefix PEFT's PeftModel
// puts before the wrapped model's own names (base_model = LoraModel,
// .model = the transformers model).
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
	Prefix      = "base_model.model."
)

// PEFTConfig is adapter_config.json: the fields of PEFT's LoraConfig that
// describe an adapter gorlhf writes or merges.
type PEFTConfig struct {
	PeftType    string  `json:"peft_type"` // "LORA"
	TaskType    string  `json:"task_type"` // "CAUSAL_LM" or "SEQ_CLS"
	BaseModel   string  `json:"base_model_name_or_path"`
	R           int     `json:"r"`
	LoraAlpha   float64 `json:"lora_alpha"`
	LoraDropout float64 `json:"lora_dropout"`
	// TargetModules lists module names; PEFT also accepts one string (a
	// regular expression, or "all-linear"), which reading keeps as a
	// one-element list.
	TargetModules   targetModules      `json:"target_modules"`
	FanInFanOut     bool               `json:"fan_in_fan_out"`
	Bias            string             `json:"bias"`
	ModulesToSave   []string           `json:"modules_to_save"`
	InitLoraWeights bool               `json:"init_lora_weights"`
	InferenceMode   bool               `json:"inference_mode"`
	UseRSLoRA       bool               `json:"use_rslora"`
	UseDoRA         bool               `json:"use_dora"`
	RankPattern     map[string]int     `json:"rank_pattern"`
	AlphaPattern    map[string]float64 `json:"alpha_pattern"`
}

// targetModules is a list that also reads from one JSON string.
type targetModules []string

func (t *targetModules) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = []string{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("target_modules: want a list of names or one string: %w", err)
	}
	*t = l
	return nil
}

// Scale is the adapters' output scale: lora_alpha/r (lora_alpha/√r with
// use_rslora).
func (c PEFTConfig) Scale() float32 {
	if c.UseRSLoRA {
		return float32(c.LoraAlpha / math.Sqrt(float64(c.R)))
	}
	return float32(c.LoraAlpha / float64(c.R))
}

// PEFT returns the adapter_config.json of a, trained on the model base
// (its --model reference).
func (a *Adapters) PEFT(base string) PEFTConfig {
	fan := false
	for _, t := range a.Targets {
		fan = fan || t.FanInFanOut
	}
	return PEFTConfig{
		PeftType: "LORA", TaskType: a.TaskType, BaseModel: base,
		R: a.Config.Rank, LoraAlpha: a.Config.Alpha, LoraDropout: a.Config.Dropout,
		TargetModules: a.Modules(), FanInFanOut: fan, Bias: "none", ModulesToSave: a.SavedModules,
		InitLoraWeights: true, InferenceMode: true,
		RankPattern: map[string]int{}, AlphaPattern: map[string]float64{},
	}
}

// Save writes a's adapter folder into dir: adapter_config.json and
// adapter_model.safetensors (F32, PEFT's tensor names), each file
// written whole or not at all, plus files (the tokenizer's) verbatim.
func (a *Adapters) Save(dir, base string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: save: %w", err)
	}
	var ts []safetensors.Tensor
	for _, p := range a.Params() {
		ts = append(ts, safetensors.Tensor{Name: Prefix + p.Name, Shape: p.Tensor.Shape, Data: p.Tensor.Data})
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), ts, safetensors.F32, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	cfg, err := json.MarshalIndent(a.PEFT(base), "", "  ")
	if err != nil {
		return fmt.Errorf("lora: save: %w", err)
	}
	for name, b := range files {
		if name != filepath.Base(name) || name == ConfigFile || name == WeightsFile {
			return fmt.Errorf("lora: save %s: cannot write extra file %q", dir, name)
		}
		if err := writeAtomic(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return writeAtomic(filepath.Join(dir, ConfigFile), append(cfg, '\n'))
}

// writeAtomic writes b to path through a temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("lora: write %s: %w", path, err)
	}
	return nil
}

// File is an adapter read from a PEFT folder.
type File struct {
	Dir    string
	Config PEFTConfig
	// Modules are the adapted modules, by the wrapped model's module name
	// ("model.layers.0.self_attn.q_proj"), in file order.
	Modules []string
	A, B    map[string]Tensor // lora_A and lora_B weights by module
	// Saved are the modules_to_save tensors, by parameter name
	// ("score.weight").
	Saved map[string]Tensor
}

// Tensor is one tensor of an adapter file.
type Tensor struct {
	Name  string // as stored
	Shape []int
	Data  []float32
}

// Read reads a PEFT LoRA adapter folder (adapter_config.json and
// adapter_model.safetensors, any float dtype). Adapters it cannot merge
// exactly are refused: DoRA, per-module ranks or alphas, a non-LoRA PEFT
// type, a tensor that is neither a LoRA weight nor under
// "base_model.model.".
func Read(dir string) (*File, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	f := &File{Dir: dir, A: map[string]Tensor{}, B: map[string]Tensor{}, Saved: map[string]Tensor{}}
	if err := json.Unmarshal(b, &f.Config); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	c := f.Config
	switch {
	case c.PeftType != "LORA":
		return nil, fmt.Errorf("lora: %s: peft_type %q, want LORA", dir, c.PeftType)
	case c.R <= 0 || !(c.LoraAlpha > 0):
		return nil, fmt.Errorf("lora: %s: r %d and lora_alpha %g must be > 0", dir, c.R, c.LoraAlpha)
	case c.UseDoRA:
		return nil, fmt.Errorf("lora: %s: use_dora is set: DoRA adapters cannot be merged by the LoRA rule", dir)
	case len(c.RankPattern) > 0 || len(c.AlphaPattern) > 0:
		return nil, fmt.Errorf("lora: %s: rank_pattern/alpha_pattern (per-module ranks) are not supported", dir)
	}
	st, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	defer st.Close()
	for _, name := range st.Names() {
		data, shape, err := st.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("lora: %s: %s: %w", dir, name, err)
		}
		t := Tensor{Name: name, Shape: shape, Data: data}
		rest, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			return nil, fmt.Errorf("lora: %s: tensor %s is not under %q", dir, name, Prefix)
		}
		if mod, ok := strings.CutSuffix(rest, ".lora_A.weight"); ok {
			f.A[mod] = t
			f.Modules = append(f.Modules, mod)
		} else if mod, ok := strings.CutSuffix(rest, ".lora_B.weight"); ok {
			f.B[mod] = t
		} else if strings.Contains(rest, "lora_") {
			return nil, fmt.Errorf("lora: %s: tensor %s is no LoRA weight this reader knows (lora_A/lora_B .weight)", dir, name)
		} else {
			f.Saved[rest] = t
		}
	}
	for _, m := range f.Modules {
		if _, ok := f.B[m]; !ok {
			return nil, fmt.Errorf("lora: %s: %s%s.lora_A.weight has no lora_B.weight", dir, Prefix, m)
		}
	}
	for m := range f.B {
		if _, ok := f.A[m]; !ok {
			return nil, fmt.Errorf("lora: %s: %s%s.lora_B.weight has no lora_A.weight", dir, Prefix, m)
		}
	}
	slices.Sort(f.Modules)
	return f, nil
}

// Bytes is the size of the adapter's tensors in float32.
func (f *File) Bytes() int64 {
	var n int64
	for _, m := range []map[string]Tensor{f.A, f.B, f.Saved} {
		for _, t := range m {
			n += 4 * int64(len(t.Data))
		}
	}
	return n
}

// Merge adds every adapter of f into m's base weight (W += s·B·A, the
// transpose for a fan_in_fan_out weight; s = Scale) and copies the saved
// modules' tensors over m's. Everything is checked first: an adapter on a
// module m lacks, or whose shapes do not fit its base weight, is an error
// naming the tensor and both shapes, and m is left unchanged.
func (f *File) Merge(m model.CausalLM) error {
	jobs, err := f.check(m)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		j.a.DeltaInto(j.t.Weight.Data, j.t.FanInFanOut)
	}
	f.copySaved(m.Params())
	return nil
}

// Attach puts f's adapters on m unmerged (as PEFT's PeftModel runs
// them: base output plus the adapter's), with copies of f's weights, and
// copies the saved modules' tensors over m's; checked as Merge is. The
// adapters are for inference: the base is not frozen and there is no
// dropout.
func (f *File) Attach(m model.CausalLM) (*Adapters, error) {
	jobs, err := f.check(m)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if *j.t.Slot != nil {
			return nil, fmt.Errorf("lora: %s already has an adapter", j.t.Module)
		}
	}
	a := &Adapters{Config: Config{Rank: f.Config.R, Alpha: f.Config.LoraAlpha, TargetModules: strings.Join(f.Config.TargetModules, ",")},
		TaskType: f.Config.TaskType, SavedModules: f.Config.ModulesToSave}
	for _, j := range jobs {
		j.a.A, j.a.B = j.a.A.Clone(), j.a.B.Clone()
		*j.t.Slot = j.a
		a.Targets = append(a.Targets, j.t)
	}
	f.copySaved(m.Params())
	return a, nil
}

type mergeJob struct {
	t nn.LoRATarget
	a *nn.LoRA
}

// check matches f's adapters and saved tensors with m's maps and
// parameters.
func (f *File) check(m model.CausalLM) ([]mergeJob, error) {
	targets, err := Select(m, []string{AllLinear})
	if err != nil {
		return nil, err
	}
	byModule := make(map[string]nn.LoRATarget, len(targets))
	for _, t := range targets {
		byModule[t.Module] = t
	}
	var jobs []mergeJob
	var errs []error
	for _, mod := range f.Modules {
		a, b := f.A[mod], f.B[mod]
		t, ok := byModule[mod]
		if !ok {
			errs = append(errs, fmt.Errorf("lora: %s: %s adapts module %s, which the base model does not have", f.Dir, a.Name, mod))
			continue
		}
		in, out := t.InOut()
		if len(a.Shape) != 2 || a.Shape[0] != f.Config.R || a.Shape[1] != in {
			errs = append(errs, fmt.Errorf("lora: %s: %s has shape %v, the base model's %s.weight %v wants [%d %d]",
				f.Dir, a.Name, a.Shape, mod, t.Weight.Shape, f.Config.R, in))
			continue
		}
		if len(b.Shape) != 2 || b.Shape[0] != out || b.Shape[1] != f.Config.R {
			errs = append(errs, fmt.Errorf("lora: %s: %s has shape %v, the base model's %s.weight %v wants [%d %d]",
				f.Dir, b.Name, b.Shape, mod, t.Weight.Shape, out, f.Config.R))
			continue
		}
		ad := &nn.LoRA{A: tensor.FromSlice(a.Data, a.Shape...), B: tensor.FromSlice(b.Data, b.Shape...), Scale: f.Config.Scale()}
		jobs = append(jobs, mergeJob{t, ad})
	}
	params := m.Params()
	for name, t := range f.Saved {
		p := params.Find(name)
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("lora: %s: %s saves module parameter %s, which the base model does not have", f.Dir, t.Name, name))
		case !slices.Equal(p.Shape, t.Shape):
			errs = append(errs, fmt.Errorf("lora: %s: %s has shape %v, the base model's %s %v", f.Dir, t.Name, t.Shape, name, p.Shape))
		}
	}
	return jobs, errors.Join(errs...)
}

func (f *File) copySaved(params nn.Params) {
	for name, t := range f.Saved {
		copy(params.Find(name).Data, t.Data)
	}
}
