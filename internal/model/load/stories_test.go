package load

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// reference is assets.ReferenceGreedy.
type reference struct {
	PromptIDs  []int32   `json:"prompt_ids"`
	GreedyIDs  []int32   `json:"greedy_ids"`
	Pos0Logits []float32 `json:"pos0_logits"`
}

func readReference(t *testing.T) reference {
	t.Helper()
	var r reference
	if err := json.Unmarshal(assets.ReferenceGreedy(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.PromptIDs) != 1 || r.PromptIDs[0] != 1 || len(r.GreedyIDs) != 200 || len(r.Pos0Logits) != 512 {
		t.Fatalf("unexpected reference: %d prompt ids, %d greedy ids, %d logits", len(r.PromptIDs), len(r.GreedyIDs), len(r.Pos0Logits))
	}
	return r
}

// logitsAt runs a full forward pass over ids (no cache) and returns the
// logits of every position, [T·V].
func logitsAt(m model.CausalLM, ids []int32) []float32 {
	pos := make([]int32, len(ids))
	for i := range pos {
		pos[i] = int32(i)
	}
	return m.Forward(nil, ids, pos, nil, 1, len(ids)).Data
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestLoad_Stories260K checks the embedded model against llama2.c's greedy
// decoding: the position-0 logits, then 200 greedy tokens, each by a full
// recompute of the sequence so far (the model has no KV cache), which must
// all match.
func TestLoad_Stories260K(t *testing.T) {
	ref := readReference(t)
	var l *Loaded
	best := time.Duration(math.MaxInt64)
	for range 3 {
		var err error
		if l, err = Load(DefaultModel, Options{}); err != nil {
			t.Fatal(err)
		}
		best = min(best, l.Elapsed)
	}
	t.Logf("%s (best of 3: %v)", l.Summary, best)
	if best > 100*time.Millisecond {
		t.Errorf("loading stories260K took %v, want < 100ms", best)
	}
	if _, isLlama := l.Model.(*llama.Model); l.Arch != "LlamaForCausalLM" || !isLlama || l.Path != EmbeddedPath {
		t.Fatalf("loaded %s from %s", l.Arch, l.Path)
	}
	if d := l.Model.Dims(); d.MaxPositions != 512 {
		t.Errorf("position limit %d, want llama2.c's seq_len 512", d.MaxPositions)
	}
	if n := l.Params().Count(); n < 250_000 || n > 270_000 {
		t.Errorf("%d parameters, want about 260K", n)
	}

	pos0 := logitsAt(l.Model, ref.PromptIDs)
	worst := 0.0
	for i, v := range pos0 {
		worst = max(worst, math.Abs(float64(v-ref.Pos0Logits[i])))
	}
	t.Logf("position-0 logits: max abs difference %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("position-0 logits differ by up to %.3g > 1e-4", worst)
	}

	seq := append([]int32(nil), ref.PromptIDs...)
	start := time.Now()
	for i, want := range ref.GreedyIDs {
		logits := logitsAt(l.Model, seq)
		got := argmax(logits[(len(seq)-1)*512:])
		if got != want {
			t.Fatalf("greedy token %d: got %d, llama2.c %d", i, got, want)
		}
		seq = append(seq, got)
	}
	t.Logf("200 greedy tokens by full recompute in %v", time.Since(start))
}

// TestSave_Stories260KRoundTrip converts the embedded model to an HF folder
// and loads it back: parameters and logits must be bit-identical in F32,
// and the BF16 copy must hold exactly the bf16-rounded weights.
func TestSave_Stories260KRoundTrip(t *testing.T) {
	l, err := Load(DefaultModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int32{1, 403, 407, 261, 378, 432, 383, 286}
	want := logitsAt(l.Model, ids)
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stories260K-hf")
			if err := Save(dir, l.Module(), l.Config, dt); err != nil {
				t.Fatal(err)
			}
			back, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if back.Arch != l.Arch || back.DType != string(dt) {
				t.Errorf("reloaded %s %s, want %s %s", back.Arch, back.DType, l.Arch, dt)
			}
			orig, got := l.Params(), back.Params()
			if len(orig) != len(got) {
				t.Fatalf("%d parameters after the round trip, want %d", len(got), len(orig))
			}
			for i, p := range orig {
				q := got[i]
				for j, v := range p.Tensor.Data {
					w := v
					if dt == safetensors.BF16 {
						w = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v))
					}
					if math.Float32bits(q.Tensor.Data[j]) != math.Float32bits(w) {
						t.Fatalf("%s[%d] = %v after the round trip, want %v", q.Name, j, q.Tensor.Data[j], w)
					}
				}
			}
			if dt != safetensors.F32 {
				return
			}
			for i, v := range logitsAt(back.Model, ids) {
				if math.Float32bits(v) != math.Float32bits(want[i]) {
					t.Fatalf("logit %d = %v after the round trip, want %v", i, v, want[i])
				}
			}
		})
	}
}
