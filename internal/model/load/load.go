// Package load turns a model reference into a ready model and writes models
// back as Hugging Face folders.
//
// A reference is resolved by package hub (a local HF folder, a llama2.c
// checkpoint file, or a Hub id already in the local HF cache), or is the
// name of the embedded default model, stories260K. The config.json decides
// the architecture through the registry (one line per architecture in
// registry.go; SupportedArchitectures lists them): the Llama family (Llama,
// Mistral, Qwen2, Qwen3) and GPT-2, as causal LMs or as
// *ForSequenceClassification reward models and critics (a backbone plus the
// scalar head of package head). Weights come from safetensors (F32, BF16 or
// F16, single file or sharded) and are kept in float32. Open adds the
// tokenizer, chat template and generation settings (a Bundle).
//
// Loading is strict on purpose: a missing tensor, a tensor the architecture
// does not have, or a shape that disagrees with config.json is an error
// naming the tensor and both shapes. A silently half-loaded model trains
// without complaint and produces garbage, which is far costlier to debug.
package load

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/llama2c"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// DefaultModel is the reference that names the embedded stories260K model
// (when no file or folder of that name exists).
const DefaultModel = "stories260K"

// EmbeddedPath is Loaded.Path for the embedded model.
const EmbeddedPath = "embedded:" + DefaultModel

// Options controls Load.
type Options struct {
	// Hub says where the Hugging Face cache is (the command reads the HF_* variables).
	Hub hub.Options
	// Logger receives warnings (for example an ignored sliding window);
	// nil discards them. They are also in Loaded.Warnings.
	Logger *slog.Logger
	// HeadPrefix is the module name of the scalar head in the checkpoint
	// of a score model: "" or "score" (Hugging Face, OpenRLHF today) or,
	// e.g., "value_head" (older OpenRLHF). It is always saved as "score".
	HeadPrefix string
}

// Loaded is a model ready to run.
type Loaded struct {
	// Model is the causal LM; for a score model it is the backbone.
	Model model.CausalLM
	// Score is set for *ForSequenceClassification models (reward models,
	// critics): Model plus the scalar head.
	Score *head.ScoreModel
	// Arch is the architecture name ("Qwen2ForCausalLM"); ModelType is
	// config.json's model_type ("qwen2").
	Arch      string
	ModelType string
	// Config is the HF config.json as read (generated for llama2.c files).
	Config []byte
	// Path is the folder or file the weights came from (EmbeddedPath for
	// the built-in model); Location is the hub resolution behind it.
	Path     string
	Location hub.Location
	// DType is the stored weight type ("F32", "BF16", "F16"; "BF16+F32"
	// when mixed); TorchDType is config.json's torch_dtype.
	DType, TorchDType string
	// PadTokenID is config.json's pad_token_id for score models (−1: none).
	PadTokenID int
	// Warnings say where gorlhf differs from Hugging Face for this model
	// (for example a sliding window it does not apply).
	Warnings []string
	// Summary is one line for the user, e.g. "loaded stories260K: llama,
	// 260.1K params, 1.0 MB f32, 3 ms"; Elapsed is the load time.
	Summary string
	Elapsed time.Duration
}

// Module returns the whole network: Score when set, else Model. Its
// Params are what training updates and what Save writes.
func (l *Loaded) Module() model.CausalLM {
	if l.Score != nil {
		return l.Score
	}
	return l.Model
}

// Params lists every parameter of Module under its HF name.
func (l *Loaded) Params() nn.Params { return l.Module().Params() }

// Load resolves ref and loads the model it names.
func Load(ref string, o Options) (*Loaded, error) {
	start := time.Now()
	loc, err := resolve(ref, o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ref, err)
	}
	var l *Loaded
	switch {
	case loc.Path == EmbeddedPath:
		l, err = loadLlama2C(assets.Stories260K(), loc, o)
	case loc.Kind == hub.Llama2CFile:
		var data []byte
		if data, err = os.ReadFile(loc.Path); err == nil {
			l, err = loadLlama2C(data, loc, o)
		}
	default:
		l, err = loadFolder(loc, o)
	}
	if err != nil {
		where := ref
		if loc.Path != filepath.Clean(ref) {
			where += " (" + loc.Path + ")"
		}
		return nil, fmt.Errorf("load %s: %w", where, err)
	}
	l.Elapsed = time.Since(start)
	l.Summary = summary(ref, l)
	if o.Logger != nil {
		for _, w := range l.Warnings {
			o.Logger.Warn(w, "model", ref)
		}
	}
	return l, nil
}

// resolve finds what ref names: the embedded model, or what hub finds.
func resolve(ref string, o Options) (hub.Location, error) {
	if ref == DefaultModel {
		if _, err := os.Stat(ref); errors.Is(err, fs.ErrNotExist) {
			return hub.Location{Kind: hub.Llama2CFile, Path: EmbeddedPath}, nil
		}
	}
	return hub.Resolve(ref, o.Hub)
}

// loadLlama2C builds a Llama model from a llama2.c checkpoint, its q/k rows
// permuted for rotate-half RoPE (llama2c.Parse's default).
func loadLlama2C(data []byte, loc hub.Location, o Options) (*Loaded, error) {
	ck, err := llama2c.Parse(data, llama2c.Options{})
	if err != nil {
		return nil, fmt.Errorf("llama2c: %w", err)
	}
	cfg := ck.Config.HFConfigJSON()
	sp, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	return build(sp, cfg, newLlama2CSource(ck), loc, o)
}

// loadFolder reads config.json and the safetensors weights of an HF folder.
func loadFolder(loc hub.Location, o Options) (*Loaded, error) {
	cfg, err := os.ReadFile(loc.File(hub.ConfigName))
	if err != nil {
		return nil, err
	}
	sp, err := parseConfig(cfg) // before the weights: config errors come first
	if err != nil {
		return nil, err
	}
	f, err := safetensors.OpenDir(loc.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return build(sp, cfg, fileSource{f}, loc, o)
}

// build makes the model sp describes and fills it from src.
func build(sp *spec, cfg []byte, src source, loc hub.Location, o Options) (*Loaded, error) {
	if err := preflight(sp, src, o.HeadPrefix); err != nil {
		return nil, err
	}
	l, err := newModel(sp)
	if err != nil {
		return nil, err
	}
	dtypes, err := fill(l.Params(), src, sp, o.HeadPrefix)
	if err != nil {
		return nil, err
	}
	l.Config, l.Path, l.Location = cfg, loc.Path, loc
	l.DType = joinDTypes(dtypes)
	if w := nonFiniteWarning(l.Params()); w != "" {
		l.Warnings = append(l.Warnings, w)
	}
	return l, nil
}

// nonFiniteWarning says how many weights are NaN or ±Inf ("" when none):
// such a model loads and runs, but what it computes is not numbers, so
// the user hears of it at load rather than from garbage later.
func nonFiniteWarning(ps nn.Params) string {
	n, total, first := 0, 0, ""
	for _, p := range ps {
		for _, v := range p.Tensor.Data {
			if v-v != 0 { // NaN or ±Inf
				if n == 0 {
					first = p.Name
				}
				n++
			}
		}
		total += len(p.Tensor.Data)
	}
	switch {
	case n == 0:
		return ""
	case n == total:
		return fmt.Sprintf("every weight (%d) is NaN or infinite: the model's outputs will not be numbers", total)
	}
	return fmt.Sprintf("%d of %d weights are NaN or infinite (the first in %s): the model's outputs will not be numbers", n, total, first)
}

// newModel allocates the model a spec describes, with zero weights.
func newModel(sp *spec) (*Loaded, error) {
	l := &Loaded{Arch: sp.Arch, ModelType: sp.arch.ModelType, TorchDType: sp.TorchDType, PadTokenID: sp.PadTokenID,
		Warnings: slices.Clone(sp.Warnings)}
	m, err := sp.Backbone.New()
	if err != nil {
		return nil, err
	}
	l.Model = m
	if sp.Score {
		l.Score = head.NewScoreModel(m, m.Dims().Hidden)
		l.Score.Norm = sp.Norm
	}
	return l, nil
}

func joinDTypes(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, "+")
}

// summary is the one-line report of a load.
func summary(ref string, l *Loaded) string {
	n := l.Params().Count()
	kind := l.ModelType
	if l.Score != nil {
		kind += " + score head"
	}
	s := fmt.Sprintf("loaded %s: %s, %s params, %s f32, %s", ref, kind, humanCount(n),
		humanBytes(4*n), roundDuration(l.Elapsed))
	if l.DType != "" && l.DType != string(safetensors.F32) {
		s += " (stored " + strings.ToLower(l.DType) + ")"
	}
	return s
}

// humanCount writes 260100 as "260.1K".
func humanCount(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// humanBytes writes 1040000 as "1.0 MB" (decimal units).
func humanBytes(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e5:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1e3)
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
