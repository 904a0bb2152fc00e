package gpt2

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestModel_KVShape checks the cache geometry and the position limit that
// the engine enforces before a learned-position lookup could overflow.
func TestModel_KVShape(t *testing.T) {
	m, err := New(Config{VocabSize: 10, MaxPositions: 33, Hidden: 24, Layers: 3, Heads: 6, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	want := model.KVShape{Layers: 3, KVHeads: 6, HeadDim: 4, Heads: 6, MaxPositions: 33}
	if got := m.KVShape(); got != want {
		t.Fatalf("KVShape = %+v, want %+v", got, want)
	}
}

// TestModel_Step prefills a prompt in one chunk, decodes the rest token by
// token, and compares every position's logits with Forward.
func TestModel_Step(t *testing.T) {
	m, err := New(Config{VocabSize: 20, MaxPositions: 16, Hidden: 16, Layers: 2, Heads: 2, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tt.Rand(4))
	ids, pos := []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	want := m.Forward(nil, ids, pos, nil, 1, len(ids)).Data
	kv := model.NewFlatCache(m.KVShape())
	got := m.Step(&model.Batch{Tokens: ids[:6], Seqs: []model.SeqSpan{{Len: 6}}, Logits: []int{0, 1, 2, 3, 4, 5}}, kv).Data
	for p := 6; p < len(ids); p++ {
		got = append(got, m.Step(&model.Batch{Tokens: ids[p : p+1], Seqs: []model.SeqSpan{{Start: p, Len: 1}}, Logits: []int{0}}, kv).Data...)
	}
	if e := tt.MaxRelErr(got, want, 1); e > 1e-5 {
		t.Fatalf("decode logits differ from Forward by %.3g", e)
	}
}
