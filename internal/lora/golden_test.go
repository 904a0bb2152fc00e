package lora

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

type goldenTensor struct {
	Shape []int     `json:"shape"`
	Data  []float32 `json:"data"`
}

type goldenCase struct {
	Kind     string                  `json:"kind"`
	Config   json.RawMessage         `json:"config"`
	R        int                     `json:"r"`
	Alpha    float64                 `json:"alpha"`
	IDs      [][]int32               `json:"ids"`
	Targets  [][]int32               `json:"targets"`
	Pos      [][]int32               `json:"pos"`
	Params   map[string]goldenTensor `json:"params"`
	Adapters map[string]goldenTensor `json:"adapters"`
	Logits   []float32               `json:"logits"`
	Loss     float32                 `json:"loss"`
	Grads    map[string][]float32    `json:"grads"`
}

func setAll(t *testing.T, ps nn.Params, want map[string]goldenTensor) {
	t.Helper()
	if len(ps) != len(want) {
		t.Fatalf("%d parameters, golden has %d", len(ps), len(want))
	}
	for _, p := range ps {
		g, ok := want[p.Name]
		if !ok || !tensor.SameShape(g.Shape, p.Tensor.Shape) {
			t.Fatalf("%s %v: golden %v (present %v)", p.Name, p.Tensor.Shape, g.Shape, ok)
		}
		copy(p.Tensor.Data, g.Data)
	}
}

// TestLoRA_Golden compares the adapted model's logits, loss and every
// adapter gradient with PyTorch 1.13 (tools/lora_golden.py): Llama with
// GQA and q/k/v biases, adapters on all seven maps; GPT-2 with adapters on
// its Conv1D maps (fan_in_fan_out).
func TestLoRA_Golden(t *testing.T) {
	b, err := os.ReadFile(modeltest.RepoFile("testdata", "golden_lora.json"))
	if err != nil {
		t.Fatalf("read golden file (regenerate with tools/lora_golden.py): %v", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"llama_lora", "gpt2_lora"} {
		t.Run(name, func(t *testing.T) {
			var c goldenCase
			if err := json.Unmarshal(all[name], &c); err != nil {
				t.Fatal(err)
			}
			var m model.CausalLM
			if c.Kind == "gpt2" {
				var cfg gpt2.Config
				if err := json.Unmarshal(c.Config, &cfg); err != nil {
					t.Fatal(err)
				}
				m, err = gpt2.New(cfg)
			} else {
				var cfg llama.Config
				if err := json.Unmarshal(c.Config, &cfg); err != nil {
					t.Fatal(err)
				}
				m, err = llama.New(cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			setAll(t, m.Params(), c.Params)
			a, err := Attach(m, Config{Rank: c.R, Alpha: c.Alpha, TargetModules: AllLinear}, 1)
			if err != nil {
				t.Fatal(err)
			}
			ps := a.Params()
			setAll(t, ps, c.Adapters)
			var ids, targets, pos []int32
			bsz, tl := len(c.IDs), len(c.IDs[0])
			for i := range c.IDs {
				ids, targets = append(ids, c.IDs[i]...), append(targets, c.Targets[i]...)
				for j := 0; j < tl; j++ {
					pos = append(pos, int32(j))
				}
			}
			tp := tensor.NewTape()
			logits := m.Forward(tp, ids, pos, nil, bsz, tl)
			e := tt.MaxRelErr(logits.Data, c.Logits, 1e-6)
			t.Logf("logits max relative error %.2g", e)
			if e > 1e-5 {
				t.Errorf("logits: max relative error %.3g > 1e-5", e)
			}
			loss := tensor.CrossEntropy(tp, logits, targets)
			if e := tt.MaxRelErr(loss.Data, []float32{c.Loss}, 1e-6); e > 1e-5 {
				t.Errorf("loss %v, golden %v", loss.Item(), c.Loss)
			}
			tp.Backward(loss)
			worst := 0.0
			for _, p := range ps {
				e := tt.MaxRelErr(p.Tensor.Grad, c.Grads[p.Name], 1e-6)
				if e > 1e-4 {
					t.Errorf("grad %s: max relative error %.3g > 1e-4", p.Name, e)
				}
				worst = max(worst, e)
			}
			t.Logf("worst adapter gradient max relative error %.2g over %d tensors", worst, len(ps))
			for _, p := range m.Params() {
				if p.Tensor.Grad != nil {
					t.Errorf("frozen %s got a gradient", p.Name)
				}
			}
		})
	}
}
