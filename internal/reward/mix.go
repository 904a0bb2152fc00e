package reward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// Part is one weighted source of a Mix.
type Part struct {
	Name   string // the key of its reward in grade.Result.Extra ("rm", "format")
	Weight float64
	Source Source
}

// Mix combines sources: the reward is Σ wᵢ·rᵢ, e.g. 1.0·RM + 0.5·format,
// a common way to keep a learned reward from drifting away from a
// required answer format. Each part's own reward is kept in Extra under
// its name, and the extras it reports under "name/key". The score is
// Σ wᵢ·scoreᵢ, or, with ScoreFrom set, that part's score alone (dynamic
// filtering usually wants the 0–1 verifier score, not the mix).
type Mix struct {
	parts     []Part
	scoreFrom int // index into parts, −1 = weighted sum
}

// NewMix returns a mix of parts. scoreFrom names the part whose score is
// the mix's score; "" means the weighted sum.
func NewMix(scoreFrom string, parts ...Part) (*Mix, error) {
	if len(parts) == 0 {
		return nil, errors.New("reward: mix: no sources")
	}
	seen := map[string]bool{}
	m := &Mix{parts: parts, scoreFrom: -1}
	for i, p := range parts {
		switch {
		case p.Name == "" || strings.ContainsAny(p.Name, "/=,"):
			return nil, fmt.Errorf("reward: mix: part %d: name %q must be non-empty, without / = or ,", i, p.Name)
		case seen[p.Name]:
			return nil, fmt.Errorf("reward: mix: two parts named %q", p.Name)
		case p.Source == nil:
			return nil, fmt.Errorf("reward: mix: part %q has no source", p.Name)
		case !finite(p.Weight):
			return nil, fmt.Errorf("reward: mix: part %q: weight %g", p.Name, p.Weight)
		}
		seen[p.Name] = true
		if p.Name == scoreFrom {
			m.scoreFrom = i
		}
	}
	if scoreFrom != "" && m.scoreFrom < 0 {
		return nil, fmt.Errorf("reward: mix: score source %q is not one of the parts", scoreFrom)
	}
	return m, nil
}

// Score implements Source. The parts run concurrently on the same
// samples; if one fails, the mix fails.
func (m *Mix) Score(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	per := make([][]grade.Result, len(m.parts))
	errs := make([]error, len(m.parts))
	var wg sync.WaitGroup
	for i, p := range m.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := p.Source.Score(ctx, samples)
			if err == nil {
				err = grade.CheckResults(rs, len(samples))
			}
			if err != nil {
				errs[i] = fmt.Errorf("reward: mix part %q: %w", p.Name, err)
				cancel()
				return
			}
			per[i] = rs
		}()
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, err
	}
	out := make([]grade.Result, len(samples))
	for j := range out {
		r := grade.Result{Extra: map[string]float64{}}
		for i, p := range m.parts {
			pr := per[i][j]
			r.Reward += p.Weight * pr.Reward
			r.Score += p.Weight * pr.Score
			r.Extra[p.Name] = pr.Reward
			for k, v := range pr.Extra {
				r.Extra[p.Name+"/"+k] = v
			}
		}
		if m.scoreFrom >= 0 {
			r.Score = per[m.scoreFrom][j].Score
		}
		out[j] = r
	}
	return out, grade.CheckResults(out, len(samples))
}

// firstError returns the first error that is not a cancellation caused by
// another part's failure, else the first error.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Weight is one "name=weight" item of a mix specification.
type Weight struct {
	Name   string
	Weight float64
}

// ParseWeights reads a mix specification such as "rm=1,format=0.5" (a
// bare name means weight 1), for flags like --reward.mix.
func ParseWeights(spec string) ([]Weight, error) {
	var out []Weight
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, hasW := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		weight := 1.0
		if hasW {
			v, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("reward: mix %q: weight of %q is %q, want a number", spec, name, w)
			}
			weight = v
		}
		if name == "" || seen[name] {
			return nil, fmt.Errorf("reward: mix %q: empty or repeated name %q", spec, name)
		}
		seen[name] = true
		out = append(out, Weight{Name: name, Weight: weight})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reward: mix %q: no sources", spec)
	}
	return out, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
