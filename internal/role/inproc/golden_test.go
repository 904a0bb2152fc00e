package inproc

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
	"github.com/gorlhf/gorlhf/internal/train"
)

// golden is testdata/ppo_golden.json, written by tools/ppo_golden.py: one
// actor step (PPO and GSPO) and one critic step computed by PyTorch on
// OpenRLHF's batch layout (left-padded prompts, right-padded responses).
type golden struct {
	Config struct {
		VocabSize    int     `json:"vocab_size"`
		Hidden       int     `json:"hidden_size"`
		Intermediate int     `json:"intermediate_size"`
		Layers       int     `json:"num_hidden_layers"`
		Heads        int     `json:"num_attention_heads"`
		KVHeads      int     `json:"num_key_value_heads"`
		Eps          float32 `json:"rms_norm_eps"`
	} `json:"config"`
	LR        float64   `json:"lr"`
	Eps       float64   `json:"eps"`
	MaxNorm   float64   `json:"max_norm"`
	Betas     []float64 `json:"betas"`
	Prompts   [][]int32
	Responses [][]int32
	Params    map[string][]float32
	Cases     []goldenCase
}

type goldenCase struct {
	Kind                          string
	Loss, PolicyLoss, KLLoss      float64
	Entropy, GradNorm             float64
	After                         map[string][]float32
	OldLogProbs, RefLogProbs, Adv role.PerToken
	OldValues, Returns            role.PerToken
}

func (c *goldenCase) UnmarshalJSON(b []byte) error {
	var raw struct {
		Kind        string               `json:"kind"`
		Loss        float64              `json:"loss"`
		PolicyLoss  float64              `json:"policy_loss"`
		KLLoss      float64              `json:"kl_loss"`
		Entropy     float64              `json:"entropy"`
		GradNorm    float64              `json:"grad_norm"`
		After       map[string][]float32 `json:"after"`
		OldLogProbs role.PerToken        `json:"old_log_probs"`
		RefLogProbs role.PerToken        `json:"ref_log_probs"`
		Advantages  role.PerToken        `json:"advantages"`
		OldValues   role.PerToken        `json:"old_values"`
		Returns     role.PerToken        `json:"returns"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = goldenCase{Kind: raw.Kind, Loss: raw.Loss, PolicyLoss: raw.PolicyLoss, KLLoss: raw.KLLoss, Entropy: raw.Entropy,
		GradNorm: raw.GradNorm, After: raw.After, OldLogProbs: raw.OldLogProbs, RefLogProbs: raw.RefLogProbs,
		Adv: raw.Advantages, OldValues: raw.OldValues, Returns: raw.Returns}
	return nil
}

func readGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/ppo_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// model builds the golden's Llama with its initial weights.
func (g golden) model(t *testing.T) *llama.Model {
	t.Helper()
	c := g.Config
	m, err := llama.New(llama.Config{VocabSize: c.VocabSize, Hidden: c.Hidden, Intermediate: c.Intermediate, Layers: c.Layers,
		Heads: c.Heads, KVHeads: c.KVHeads, RMSNormEps: c.Eps, TieWordEmbeddings: true})
	if err != nil {
		t.Fatal(err)
	}
	setParams(t, m.Params(), g.Params)
	return m
}

func setParams(t *testing.T, ps nn.Params, vals map[string][]float32) {
	t.Helper()
	for _, p := range ps {
		v, ok := vals[p.Name]
		if !ok || len(v) != len(p.Tensor.Data) {
			t.Fatalf("golden has no %s of %d values", p.Name, len(p.Tensor.Data))
		}
		copy(p.Tensor.Data, v)
	}
}

// seqs lays the golden's prompts and responses out as role.Sequences.
func (g golden) seqs() role.Sequences {
	var s role.Sequences
	for i, p := range g.Prompts {
		s.Tokens = append(s.Tokens, append(append([]int32(nil), p...), g.Responses[i]...))
		s.PromptLens = append(s.PromptLens, len(p))
	}
	return s
}

// micro splits the batch into micro-batches of 4 and 2 sequences, so the
// comparison also covers accumulation with step-level normalisation.
var micro = [][]int{{0, 1, 2, 3}, {4, 5}}

func (g golden) adam() optim.Config {
	return optim.Config{Beta1: g.Betas[0], Beta2: g.Betas[1], Eps: g.Eps}
}

func checkAfter(t *testing.T, ps nn.Params, after map[string][]float32) {
	t.Helper()
	for _, p := range ps {
		want := after[p.Name]
		for i, v := range p.Tensor.Data {
			if d := math.Abs(float64(v - want[i])); d > 2e-5 {
				t.Fatalf("%s[%d] after the step: %g, PyTorch %g", p.Name, i, v, want[i])
			}
		}
	}
}

func TestActor_TrainStep_Golden(t *testing.T) {
	g := readGolden(t)
	s := g.seqs()
	losses := map[string]rl.ActorLossConfig{
		"ppo": {Policy: rl.PolicyLossConfig{Type: rl.PolicyPPO, ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3, Aggregation: rl.TokenMean},
			KLCoef: 0.1, KLEstimator: rl.K3, EntropyCoef: 0.01},
		"gspo": {Policy: rl.PolicyLossConfig{Type: rl.PolicyGSPO, ClipLow: 3e-4, ClipHigh: 4e-4, Aggregation: rl.TokenMean}},
	}
	for _, c := range g.Cases {
		lc, ok := losses[c.Kind]
		if !ok {
			continue
		}
		t.Run(c.Kind, func(t *testing.T) {
			m := g.model(t)
			a, err := NewActor(train.Model{Module: m}, g.adam(), 0)
			if err != nil {
				t.Fatal(err)
			}
			req := role.ActorStep{Loss: lc, LR: g.LR, MaxNorm: g.MaxNorm}
			var masks []*tensor.Tensor
			for _, idx := range micro {
				mb := role.ActorMicroBatch{Seqs: s.Select(idx), OldLogProbs: c.OldLogProbs.Select(idx), Advantages: c.Adv.Select(idx)}
				if lc.KLCoef > 0 {
					mb.RefLogProbs = c.RefLogProbs.Select(idx)
				}
				req.MicroBatches = append(req.MicroBatches, mb)
				masks = append(masks, mb.Seqs.Mask())
			}
			req.Norm = rl.StepLossNorm(masks...)
			res, err := a.TrainStep(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range []struct {
				name      string
				got, want float64
			}{{"loss", res.Loss, c.Loss}, {"policy loss", res.PolicyLoss, c.PolicyLoss}, {"kl loss", res.KLLoss, c.KLLoss},
				{"grad norm", res.GradNorm, c.GradNorm}} {
				if math.Abs(x.got-x.want) > 2e-5*math.Max(1, math.Abs(x.want)) {
					t.Fatalf("%s %.7g, PyTorch %.7g", x.name, x.got, x.want)
				}
			}
			if c.Kind == "ppo" && math.Abs(res.Entropy-c.Entropy) > 2e-5*c.Entropy {
				t.Fatalf("entropy %.7g, PyTorch %.7g", res.Entropy, c.Entropy)
			}
			checkAfter(t, m.Params(), c.After)
		})
	}
}

func TestCritic_TrainStep_Golden(t *testing.T) {
	g := readGolden(t)
	s := g.seqs()
	for _, c := range g.Cases {
		if c.Kind != "critic" {
			continue
		}
		sm := head.NewScoreModel(g.model(t), g.Config.Hidden)
		setParams(t, sm.Params(), g.Params)
		cr, err := NewCritic(sm, nil, nil, g.adam(), 0)
		if err != nil {
			t.Fatal(err)
		}
		req := role.CriticStep{Loss: rl.ValueLossConfig{Clip: 0.5, Aggregation: rl.TokenMean}, LR: g.LR, MaxNorm: g.MaxNorm}
		for _, idx := range micro {
			req.MicroBatches = append(req.MicroBatches, role.CriticMicroBatch{Seqs: s.Select(idx), OldValues: c.OldValues.Select(idx), Returns: c.Returns.Select(idx)})
		}
		res, err := cr.TrainStep(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Loss-c.Loss) > 2e-5*math.Max(1, c.Loss) || math.Abs(res.GradNorm-c.GradNorm) > 2e-5*c.GradNorm {
			t.Fatalf("value loss %.7g grad norm %.7g; PyTorch %.7g, %.7g", res.Loss, res.GradNorm, c.Loss, c.GradNorm)
		}
		checkAfter(t, sm.Params(), c.After)
	}
}
