package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/gorlhf/gorlhf/internal/generate"
)

// samplingFields are the request fields both endpoints share. Pointers
// tell "absent" (OpenAI's default) from zero.
type samplingFields struct {
	Model       string          `json:"model"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	N           *int            `json:"n"`
	Stream      bool            `json:"stream"`
	Stop        json.RawMessage `json:"stop"` // a string or a list of strings
	Seed        *seed           `json:"seed"`
	// Rejected when set to anything but their defaults.
	PresencePenalty  *float64       `json:"presence_penalty"`
	FrequencyPenalty *float64       `json:"frequency_penalty"`
	LogitBias        map[string]any `json:"logit_bias"`
	StreamOptions    *struct {
		Usage bool `json:"include_usage"`
	} `json:"stream_options"`
	// vLLM-style extensions.
	TopK         *int     `json:"top_k"`
	MinP         *float64 `json:"min_p"`
	StopTokenIDs []int32  `json:"stop_token_ids"`
	IgnoreEOS    bool     `json:"ignore_eos"`
}

// seed is a request's seed: any JSON integer in [−2⁶³, 2⁶⁴), a negative
// one standing for its two's-complement uint64 (so the in-process engine's
// full uint64 seeds travel unchanged).
type seed uint64

func (s *seed) UnmarshalJSON(b []byte) error {
	text := string(b)
	if u, err := strconv.ParseUint(text, 10, 64); err == nil {
		*s = seed(u)
		return nil
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("seed: want an integer in [-2^63, 2^64), got %s", text)
	}
	*s = seed(uint64(i))
	return nil
}

// paramError is a 400 that names the request field at fault.
type paramError struct {
	param string
	err   error
}

func (e *paramError) Error() string {
	if e.param == "" {
		return e.err.Error()
	}
	return e.param + ": " + e.err.Error()
}

func perr(param, format string, args ...any) error {
	return &paramError{param: param, err: fmt.Errorf(format, args...)}
}

// sampling converts the shared fields into engine parameters; maxTokens
// and topLogprobs come from the endpoint.
func (f *samplingFields) sampling(maxTokens, topLogprobs int) (generate.SamplingParams, error) {
	p := generate.SamplingParams{N: 1, Temperature: 1, MaxNewTokens: maxTokens, TopLogProbs: topLogprobs,
		StopTokenIDs: f.StopTokenIDs, IgnoreEOS: f.IgnoreEOS}
	if f.N != nil {
		if *f.N < 1 {
			return p, perr("n", "must be ≥ 1, got %d", *f.N)
		}
		p.N = *f.N
	}
	if f.Temperature != nil {
		if *f.Temperature < 0 || *f.Temperature > 2 {
			return p, perr("temperature", "must be in [0, 2], got %g", *f.Temperature)
		}
		p.Temperature = float32(*f.Temperature)
	}
	if f.TopP != nil {
		if *f.TopP <= 0 || *f.TopP > 1 {
			return p, perr("top_p", "must be in (0, 1], got %g", *f.TopP)
		}
		p.TopP = float32(*f.TopP)
	}
	if f.TopK != nil {
		if *f.TopK < -1 {
			return p, perr("top_k", "must be ≥ 0 (or −1 for off), got %d", *f.TopK)
		}
		p.TopK = max(*f.TopK, 0)
	}
	if f.MinP != nil {
		if *f.MinP < 0 || *f.MinP > 1 {
			return p, perr("min_p", "must be in [0, 1], got %g", *f.MinP)
		}
		p.MinP = float32(*f.MinP)
	}
	stops, err := stopStrings(f.Stop)
	if err != nil {
		return p, err
	}
	p.StopStrings = stops
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = rand.Uint64() // OpenAI: no seed means not reproducible
	}
	if err := f.unsupported(); err != nil {
		return p, err
	}
	if err := p.Validate(); err != nil {
		return p, &paramError{param: "", err: err}
	}
	return p, nil
}

// unsupported rejects features the engine does not implement instead of
// silently ignoring them.
func (f *samplingFields) unsupported() error {
	switch {
	case f.PresencePenalty != nil && *f.PresencePenalty != 0:
		return perr("presence_penalty", "is not supported")
	case f.FrequencyPenalty != nil && *f.FrequencyPenalty != 0:
		return perr("frequency_penalty", "is not supported")
	case len(f.LogitBias) > 0:
		return perr("logit_bias", "is not supported")
	}
	return nil
}

func (f *samplingFields) includeUsage() bool { return f.StreamOptions != nil && f.StreamOptions.Usage }

// stopStrings parses "stop": null, a string, or a list of up to 4 strings.
func stopStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, perr("stop", "must be a string or a list of strings")
	}
	if len(list) > 4 {
		return nil, perr("stop", "at most 4 stop strings, got %d", len(list))
	}
	for _, s := range list {
		if s == "" {
			return nil, perr("stop", "stop strings must not be empty")
		}
	}
	return list, nil
}

// prompts parses a completions "prompt": a string, a list of strings, a
// list of token ids, or a list of lists of token ids.
func (s *Server) prompts(raw json.RawMessage) ([][]int32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, perr("prompt", "is required")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		ids, err := s.encode(text)
		return [][]int32{ids}, err
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil && len(texts) > 0 {
		out := make([][]int32, len(texts))
		for i, t := range texts {
			var err error
			if out[i], err = s.encode(t); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil && len(ids) > 0 {
		return [][]int32{ids}, nil
	}
	var lists [][]int32
	if json.Unmarshal(raw, &lists) == nil && len(lists) > 0 {
		return lists, nil
	}
	return nil, perr("prompt", "must be a string, a list of strings, a list of token ids or a list of lists of token ids")
}

// encode tokenizes completion text with the prompt encoder (BOS first when
// the model wants one; "" is unconditional generation from BOS).
func (s *Server) encode(text string) ([]int32, error) {
	p, err := s.enc.Text(text)
	if err != nil {
		return nil, perr("prompt", "%v", err)
	}
	return p.IDs, nil
}

// engineError maps an engine validation error to a 400.
func engineError(i int, err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return err
	}
	return &paramError{err: fmt.Errorf("prompt %d: %w", i, err)}
}
