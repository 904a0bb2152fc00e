package model_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// randomize gives every parameter (norm weights and biases included) a
// random value, so that no term of the decode path can hide behind a zero
// or a one.
func randomize(m model.CausalLM, seed uint64) {
	r := tt.Rand(seed)
	for _, p := range m.Params() {
		for i := range p.Tensor.Data {
			p.Tensor.Data[i] += float32(r.NormFloat64()) * 0.2
		}
	}
}

// tinyDecoders are random models covering every decode path: GQA, q/k/v
// biases, q/k norms and Llama-3 RoPE scaling; a tied-embedding MHA Llama;
// GPT-2 with learned positions.
func tinyDecoders(t *testing.T) map[string]model.Decoder {
	t.Helper()
	out := map[string]model.Decoder{}
	gqa, err := llama.New(llama.Config{VocabSize: 61, Hidden: 32, Intermediate: 48, Layers: 2, Heads: 4, KVHeads: 2,
		RMSNormEps: 1e-5, RopeTheta: 5000, AttentionBias: true, QKNorm: true,
		RopeScaling: &tensor.RoPEScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16}})
	if err != nil {
		t.Fatal(err)
	}
	tied, err := llama.New(llama.Config{VocabSize: 50, Hidden: 24, Intermediate: 40, Layers: 3, Heads: 3,
		RMSNormEps: 1e-6, TieWordEmbeddings: true})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := gpt2.New(gpt2.Config{VocabSize: 57, MaxPositions: 40, Hidden: 32, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []model.Decoder{gqa, tied, g2} {
		randomize(m, uint64(i+1))
	}
	out["llama_gqa_bias_qknorm_rope3"], out["llama_tied"], out["gpt2"] = gqa, tied, g2
	return out
}

// chunkPlan feeds sequences to Step in ragged chunks: every step lists
// (sequence, new tokens) pairs; sequences advance independently.
type chunkPlan [][][2]int

// runPlan runs the plan on a FlatCache and returns, per sequence, the
// logits Step produced for each of its positions.
func runPlan(d model.Decoder, seqs [][]int32, plan chunkPlan) [][][]float32 {
	kv := model.NewFlatCache(d.KVShape())
	got := make([][][]float32, len(seqs))
	done := make([]int, len(seqs))
	for _, step := range plan {
		b := &model.Batch{}
		for _, sc := range step {
			s, n := sc[0], sc[1]
			b.Seqs = append(b.Seqs, model.SeqSpan{ID: s, Start: done[s], Len: n})
			b.Tokens = append(b.Tokens, seqs[s][done[s]:done[s]+n]...)
			for i := 0; i < n; i++ {
				b.Logits = append(b.Logits, len(b.Logits))
			}
			done[s] += n
		}
		logits := d.Step(b, kv)
		v := logits.Shape[1]
		row := 0
		for _, sc := range step {
			for i := 0; i < sc[1]; i++ {
				got[sc[0]] = append(got[sc[0]], logits.Data[row*v:(row+1)*v])
				row++
			}
		}
	}
	return got
}

// fullLogits is the reference: Forward over the whole sequence, one row.
func fullLogits(m model.CausalLM, ids []int32) [][]float32 {
	pos := make([]int32, len(ids))
	for i := range pos {
		pos[i] = int32(i)
	}
	out := m.Forward(nil, ids, pos, nil, 1, len(ids))
	v := out.Shape[2]
	rows := make([][]float32, len(ids))
	for i := range rows {
		rows[i] = out.Data[i*v : (i+1)*v]
	}
	return rows
}

func checkPlan(t *testing.T, d model.Decoder, seqs [][]int32, plan chunkPlan, tol float64) {
	t.Helper()
	got := runPlan(d, seqs, plan)
	for s, ids := range seqs {
		want := fullLogits(d, ids)
		if len(got[s]) != len(want) {
			t.Fatalf("sequence %d: %d logit rows from Step, want %d", s, len(got[s]), len(want))
		}
		for p := range want {
			if e := tt.MaxRelErr(got[s][p], want[p], 1); e > tol {
				t.Fatalf("sequence %d position %d: cached decode logits differ from Forward by %.3g (tol %g)", s, p, e, tol)
			}
		}
	}
}

func randomIDs(seed uint64, vocab int, lens ...int) [][]int32 {
	r := tt.Rand(seed)
	out := make([][]int32, len(lens))
	for i, n := range lens {
		for j := 0; j < n; j++ {
			out[i] = append(out[i], int32(r.IntN(vocab)))
		}
	}
	return out
}

// TestDecoder_Step checks that cached, chunked, ragged decoding gives the
// logits of a full recompute at every position, for every architecture
// path: prefill in uneven chunks, sequences joining late, single-token
// decode steps mixed with prefill chunks.
func TestDecoder_Step(t *testing.T) {
	plans := map[string]chunkPlan{
		"one_shot": {{{0, 9}, {1, 13}, {2, 4}}},
		"token_by_token": func() chunkPlan {
			var p chunkPlan
			for i := 0; i < 13; i++ {
				step := [][2]int{{1, 1}}
				if i < 9 {
					step = append(step, [2]int{0, 1})
				}
				if i >= 9 {
					step = append(step, [2]int{2, 1})
				}
				p = append(p, step)
			}
			return p
		}(),
		"chunked_ragged": {
			{{0, 4}, {1, 5}},
			{{1, 3}, {0, 1}, {2, 2}},
			{{0, 4}, {1, 1}, {2, 1}},
			{{1, 4}, {2, 1}},
		},
	}
	for name, d := range tinyDecoders(t) {
		seqs := randomIDs(7, d.Params()[0].Tensor.Shape[0], 9, 13, 4)
		for pname, plan := range plans {
			t.Run(name+"/"+pname, func(t *testing.T) { checkPlan(t, d, seqs, plan, 1e-5) })
		}
	}
}

// TestDecoder_Step_LogitRows checks that asking for a subset of rows
// returns exactly those rows, in the order asked.
func TestDecoder_Step_LogitRows(t *testing.T) {
	d := tinyDecoders(t)["gpt2"]
	ids := randomIDs(3, 57, 6)[0]
	b := &model.Batch{Tokens: ids, Seqs: []model.SeqSpan{{ID: 0, Len: 6}}, Logits: []int{5, 2}}
	got := d.Step(b, model.NewFlatCache(d.KVShape()))
	want := fullLogits(d, ids)
	if got.Shape[0] != 2 {
		t.Fatalf("got %d logit rows, want 2", got.Shape[0])
	}
	for i, p := range []int{5, 2} {
		if e := tt.MaxRelErr(got.Data[i*57:(i+1)*57], want[p], 1); e > 1e-5 {
			t.Errorf("row %d (position %d): error %.3g", i, p, e)
		}
	}
}

// TestDecoder_Step_Stories260K runs the real pretrained model: chunked
// cached decoding equals the full recompute, and greedy decoding through
// the cache reproduces llama2.c's reference continuation.
func TestDecoder_Step_Stories260K(t *testing.T) {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := l.Model.(model.Decoder)
	if !ok {
		t.Fatalf("%T does not implement model.Decoder", l.Model)
	}
	var ref struct {
		Greedy []int32 `json:"greedy_ids"`
	}
	if err := json.Unmarshal(assets.ReferenceGreedy(), &ref); err != nil {
		t.Fatal(err)
	}
	t.Run("chunked_equals_forward", func(t *testing.T) {
		seq := append([]int32{1}, ref.Greedy[:40]...)
		checkPlan(t, d, [][]int32{seq}, chunkPlan{{{0, 17}}, {{0, 1}}, {{0, 23}}}, 1e-5)
	})
	t.Run("greedy_matches_reference", func(t *testing.T) {
		kv := model.NewFlatCache(d.KVShape())
		tok, n := int32(1), min(len(ref.Greedy), 120)
		for p := 0; p < n; p++ {
			logits := d.Step(&model.Batch{Tokens: []int32{tok}, Seqs: []model.SeqSpan{{Start: p, Len: 1}}, Logits: []int{0}}, kv)
			tok = argmax(logits.Data)
			if tok != ref.Greedy[p] {
				t.Fatalf("position %d: greedy token %d, reference %d", p, tok, ref.Greedy[p])
			}
		}
	})
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

// TestBatch_Check checks that malformed batches are caught as bugs.
func TestBatch_Check(t *testing.T) {
	cases := map[string]model.Batch{
		"rows_uncovered": {Tokens: []int32{1, 2}, Seqs: []model.SeqSpan{{Len: 1}}},
		"empty_span":     {Tokens: []int32{1}, Seqs: []model.SeqSpan{{Len: 1}, {Len: 0}}},
		"bad_logit_row":  {Tokens: []int32{1}, Seqs: []model.SeqSpan{{Len: 1}}, Logits: []int{1}},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal(fmt.Sprintf("Check accepted %+v", b))
				}
			}()
			b.Check()
		})
	}
}
