package llama

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestModel_KVShape checks the cache geometry, GQA and explicit head_dim
// included (the whole decode-vs-Forward twin is in package model's tests).
func TestModel_KVShape(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want model.KVShape
	}{
		{"mha", Config{VocabSize: 8, Hidden: 16, Intermediate: 8, Layers: 2, Heads: 4, RMSNormEps: 1e-5},
			model.KVShape{Layers: 2, KVHeads: 4, HeadDim: 4, Heads: 4}},
		{"gqa_head_dim", Config{VocabSize: 8, Hidden: 16, Intermediate: 8, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 6, RMSNormEps: 1e-5},
			model.KVShape{Layers: 3, KVHeads: 2, HeadDim: 6, Heads: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.KVShape(); got != c.want {
				t.Fatalf("KVShape = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestModel_Step decodes one sequence token by token and compares the last
// logits with Forward.
func TestModel_Step(t *testing.T) {
	m, err := New(Config{VocabSize: 20, Hidden: 16, Intermediate: 24, Layers: 2, Heads: 4, KVHeads: 1, RMSNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tt.Rand(3))
	ids, pos := []int32{3, 1, 4, 1, 5, 9, 2, 6}, []int32{0, 1, 2, 3, 4, 5, 6, 7}
	want := m.Forward(nil, ids, pos, nil, 1, len(ids)).Data[7*20:]
	kv := model.NewFlatCache(m.KVShape())
	var got []float32
	for p, id := range ids {
		got = m.Step(&model.Batch{Tokens: []int32{id}, Seqs: []model.SeqSpan{{Start: p, Len: 1}}, Logits: []int{0}}, kv).Data
	}
	if e := tt.MaxRelErr(got, want, 1); e > 1e-5 {
		t.Fatalf("last-position logits differ from Forward by %.3g", e)
	}
}
