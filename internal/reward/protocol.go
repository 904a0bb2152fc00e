package reward

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// The remote reward protocol is OpenRLHF's (openrlhf/utils/agent.py and
// openrlhf/cli/serve_rm.py): POST a JSON Request to a URL such as
// http://host:5000/get_reward and get a JSON Response back.
//
// "query" holds the full sequences to score: prompt and response decoded
// together with special tokens kept (grade.Sample.Text); "prompts" the prompts
// alone and "labels" the dataset labels, so that a verifier can split the
// response off and check it. OpenRLHF always sends all three; its own
// reward-model server reads only "query". In the answer only "rewards" is
// required; "scores" (for dynamic filtering) defaults to the rewards and
// "extra_logs" (numbers or per-sample number lists to log) may be absent.

// DefaultPath is where OpenRLHF's reward server listens.
const DefaultPath = "/get_reward"

// Request is the body of a reward request.
type Request struct {
	Query   Texts `json:"query"`
	Prompts Texts `json:"prompts"`
	Labels  Texts `json:"labels"`
}

// Response is the body of a reward answer.
type Response struct {
	Rewards   Numbers                    `json:"rewards"`
	Scores    Numbers                    `json:"scores"`
	ExtraLogs map[string]json.RawMessage `json:"extra_logs"`
}

// Texts is a list of strings that, when decoded, also accepts what Python
// clients send in practice: null for a missing label, and numbers for
// numeric labels (kept as their JSON text, "18" or "0.5").
type Texts []string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Texts) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Texts, len(raw))
	for i, r := range raw {
		r = bytes.TrimSpace(r)
		switch {
		case bytes.Equal(r, []byte("null")):
		case len(r) > 0 && r[0] == '"':
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		case json.Valid(r) && (r[0] == '-' || (r[0] >= '0' && r[0] <= '9')):
			out[i] = string(r)
		default:
			return fmt.Errorf("item %d is %s, want a string", i, snippet(r, 40))
		}
	}
	*t = out
	return nil
}

// Numbers is a list of numbers that, when decoded, rejects null (which
// encoding/json would silently read as 0: a missing reward must not become
// a zero reward).
type Numbers []float64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Numbers) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*n = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Numbers, len(raw))
	for i, r := range raw {
		if bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
			return fmt.Errorf("item %d is null, want a number", i)
		}
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return fmt.Errorf("item %d is %s, want a number", i, snippet(r, 40))
		}
	}
	*n = out
	return nil
}

// newRequest builds the request for samples.
func newRequest(samples []grade.Sample) Request {
	r := Request{Query: make(Texts, len(samples)), Prompts: make(Texts, len(samples)), Labels: make(Texts, len(samples))}
	for i, s := range samples {
		r.Query[i], r.Prompts[i], r.Labels[i] = s.Text(), s.Prompt, s.Label
	}
	return r
}

// samples turns a request into samples: Query is the text; Response is
// the query minus the prompt when the query starts with it, as OpenRLHF's
// example reward functions split it.
func (r Request) samples() ([]grade.Sample, error) {
	n := len(r.Query)
	if r.Prompts != nil && len(r.Prompts) != n {
		return nil, fmt.Errorf("%d prompts for %d queries", len(r.Prompts), n)
	}
	if r.Labels != nil && len(r.Labels) != n {
		return nil, fmt.Errorf("%d labels for %d queries", len(r.Labels), n)
	}
	out := make([]grade.Sample, n)
	for i, q := range r.Query {
		s := grade.Sample{Query: q, Response: q}
		if r.Prompts != nil {
			s.Prompt = r.Prompts[i]
			if len(s.Prompt) <= len(q) && q[:len(s.Prompt)] == s.Prompt {
				s.Response = q[len(s.Prompt):]
			}
		}
		if r.Labels != nil {
			s.Label = r.Labels[i]
		}
		out[i] = s
	}
	return out, nil
}

// results checks a decoded response against n queries and turns it into
// results. Extra logs that are one number are given to every sample; a
// list of n numbers is per sample; anything else is only logged by the
// server and ignored here.
func (r Response) results(n int) ([]grade.Result, error) {
	if r.Rewards == nil {
		return nil, fmt.Errorf(`no "rewards" in the answer`)
	}
	if len(r.Rewards) != n {
		return nil, fmt.Errorf("%d rewards for %d queries", len(r.Rewards), n)
	}
	if r.Scores != nil && len(r.Scores) != n {
		return nil, fmt.Errorf("%d scores for %d queries", len(r.Scores), n)
	}
	out := make([]grade.Result, n)
	for i, v := range r.Rewards {
		out[i] = grade.Result{Reward: v, Score: v}
		if r.Scores != nil {
			out[i].Score = r.Scores[i]
		}
	}
	for k, raw := range r.ExtraLogs {
		var one float64
		var many []float64
		switch {
		case json.Unmarshal(raw, &one) == nil:
			for i := range out {
				setExtra(&out[i], k, one)
			}
		case json.Unmarshal(raw, &many) == nil && len(many) == n:
			for i := range out {
				setExtra(&out[i], k, many[i])
			}
		}
	}
	return out, grade.CheckResults(out, n)
}

func setExtra(r *grade.Result, k string, v float64) {
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[k] = v
}

// newResponse builds the answer for results: per-sample extras become
// lists (a key missing from some results is reported as 0 there; JSON has
// no NaN).
func newResponse(rs []grade.Result) Response {
	resp := Response{Rewards: make(Numbers, len(rs)), Scores: make(Numbers, len(rs)), ExtraLogs: map[string]json.RawMessage{}}
	keys := map[string][]float64{}
	for i, r := range rs {
		resp.Rewards[i], resp.Scores[i] = r.Reward, r.Score
		for k := range r.Extra {
			if keys[k] == nil {
				keys[k] = make([]float64, len(rs))
			}
		}
	}
	for k, vs := range keys {
		for i, r := range rs {
			if v, ok := r.Extra[k]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				vs[i] = v
			}
		}
		b, _ := json.Marshal(vs) // finite floats always marshal
		resp.ExtraLogs[k] = b
	}
	return resp
}

// snippet quotes at most n bytes of b for an error message.
func snippet(b []byte, n int) string { return httpjson.Snippet(b, n) }
