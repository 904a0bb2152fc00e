package load

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/llama2c"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// source is a set of named weights: a safetensors checkpoint or a parsed
// llama2.c file.
type source interface {
	names() []string
	shape(name string) []int
	dtype(name string) string
	float32(name string) ([]float32, error)
}

type fileSource struct{ f *safetensors.File }

func (s fileSource) names() []string { return s.f.Names() }
func (s fileSource) shape(n string) []int {
	info, _ := s.f.Info(n)
	return info.Shape
}
func (s fileSource) dtype(n string) string {
	info, _ := s.f.Info(n)
	return string(info.DType)
}
func (s fileSource) float32(n string) ([]float32, error) {
	data, _, err := s.f.Float32(n)
	return data, err
}

type llama2cSource struct{ byName map[string]llama2c.Tensor }

func newLlama2CSource(ck *llama2c.Checkpoint) llama2cSource {
	s := llama2cSource{byName: make(map[string]llama2c.Tensor, len(ck.Tensors))}
	for _, t := range ck.Tensors {
		s.byName[t.Name] = t
	}
	return s
}

func (s llama2cSource) names() []string      { return slices.Sorted(maps.Keys(s.byName)) }
func (s llama2cSource) shape(n string) []int { return s.byName[n].Shape }
func (s llama2cSource) dtype(string) string  { return string(safetensors.F32) }
func (s llama2cSource) float32(n string) ([]float32, error) {
	// Parse already copied the weights out of the file: hand them over.
	return s.byName[n].Data, nil
}

// canonical maps a stored tensor name to the name our parameters use, or
// "" for buffers HF writes but that are not weights (the architecture's
// TensorName). headPrefix is the module name of the scalar head in the
// file ("score" in HF, "value_head" in older OpenRLHF).
func canonical(name string, a Arch, headPrefix string) string {
	if headPrefix != "" && headPrefix != "score" && strings.HasPrefix(name, headPrefix+".") {
		name = "score." + strings.TrimPrefix(name, headPrefix+".")
	}
	if a.TensorName == nil {
		return name
	}
	return a.TensorName(name)
}

// fill reads every parameter of ps from src, checking that each exists
// with the right shape and that src holds nothing else. It returns the
// stored dtypes seen. A tied "lm_head.weight" in the file is accepted when
// it equals the embedding (some exporters write both).
func fill(ps nn.Params, src source, sp *spec, headPrefix string) (map[string]int, error) {
	want := make(map[string]*tensor.Tensor, len(ps))
	for _, p := range ps {
		want[p.Name] = p.Tensor
	}
	var errs []string
	var tiedCopy string
	dtypes := map[string]int{}
	done := make(map[string]bool, len(ps))
	for _, stored := range src.names() {
		name := canonical(stored, sp.arch, headPrefix)
		if name == "" {
			continue
		}
		t, ok := want[name]
		switch {
		case !ok && name == "lm_head.weight" && !sp.Score && want[sp.arch.TiedEmbedding] != nil:
			tiedCopy = stored
			continue
		case !ok:
			errs = append(errs, fmt.Sprintf("unexpected tensor %q %v (not a parameter of %s)", stored, src.shape(stored), sp.Arch))
			continue
		case done[name]:
			errs = append(errs, fmt.Sprintf("tensor %q is stored twice (as %q too)", name, stored))
			continue
		}
		done[name] = true // loaded, or reported below: not "missing"
		if got := src.shape(stored); !tensor.SameShape(got, t.Shape) {
			errs = append(errs, fmt.Sprintf("tensor %q has shape %v but the config implies %v", stored, got, t.Shape))
			continue
		}
		data, err := src.float32(stored)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		t.Data = data // freshly decoded: no need to copy
		dtypes[src.dtype(stored)]++
	}
	for _, p := range ps {
		if !done[p.Name] {
			errs = append(errs, fmt.Sprintf("tensor %q %v is missing", p.Name, p.Tensor.Shape))
		}
	}
	if len(errs) == 0 && tiedCopy != "" {
		if err := checkTiedCopy(src, tiedCopy, want[sp.arch.TiedEmbedding]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	return dtypes, nil
}

// preflight checks the stored tensors against the shapes config.json
// implies before anything is allocated (for a spec that is a
// model.Shaper), so that an absurd config (a vocabulary of 10⁸ beside
// small weights) fails naming both shapes instead of exhausting memory.
// It stops at the first few problems: a config with a huge layer count
// is not listed out. fill checks everything again while loading.
func preflight(sp *spec, src source, headPrefix string) error {
	sh, ok := sp.Backbone.(model.Shaper)
	if !ok {
		return nil
	}
	stored := map[string]string{} // our name → the name in the file
	for _, n := range src.names() {
		if c := canonical(n, sp.arch, headPrefix); c != "" {
			stored[c] = n
		}
	}
	const show = 6
	var errs []string
	for name, shape := range sh.ParamShapes() {
		if sp.Score && name == lmHeadName {
			continue
		}
		n, ok := stored[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("tensor %q %v is missing", name, shape))
		case !tensor.SameShape(src.shape(n), shape):
			errs = append(errs, fmt.Sprintf("tensor %q has shape %v but the config implies %v", n, src.shape(n), shape))
		}
		if len(errs) == show {
			errs = append(errs, "…")
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config.json does not match the weights: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkTiedCopy accepts a stored LM head only if it is the embedding.
func checkTiedCopy(src source, name string, embed *tensor.Tensor) error {
	if got := src.shape(name); !tensor.SameShape(got, embed.Shape) {
		return fmt.Errorf("tensor %q has shape %v but the tied embedding is %v", name, got, embed.Shape)
	}
	data, err := src.float32(name)
	if err != nil {
		return err
	}
	for i, v := range data {
		if v != embed.Data[i] {
			return fmt.Errorf("tensor %q differs from the embedding but tie_word_embeddings is true", name)
		}
	}
	return nil
}

// joinErrs reports the first few problems and how many there were.
func joinErrs(errs []string) error {
	const show = 6
	if len(errs) == 1 {
		return errors.New(errs[0])
	}
	msg := strings.Join(errs[:min(show, len(errs))], "; ")
	if len(errs) > show {
		msg += fmt.Sprintf("; and %d more", len(errs)-show)
	}
	return fmt.Errorf("%d problem(s): %s", len(errs), msg)
}
