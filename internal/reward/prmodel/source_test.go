package prmodel

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func TestTagSteps(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"3+4=7\n7+1=8\n", "3+4=7 @\n7+1=8 @"},
		{"3+4=7 \n\n7+1=8", "3+4=7 @\n\n7+1=8 @"},
		{"3+4=7 @ 7+1=8", "3+4=7 @ 7+1=8"}, // tagged already
		{"", ""},
	} {
		if got := TagSteps(c.in, "@"); got != c.want {
			t.Errorf("TagSteps(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAggregation(t *testing.T) {
	steps := []float64{0.9, 0.5, 0.8}
	for a, want := range map[Aggregation]float64{Min: 0.5, Prod: 0.36, Mean: 2.2 / 3, Last: 0.8} {
		if got := a.Apply(steps); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %v, want %v", a, got, want)
		}
		if got := a.Apply(nil); got != 0 {
			t.Errorf("%s of no step: %v", a, got)
		}
	}
	var a Aggregation
	if err := a.Set("median"); err == nil {
		t.Fatal("median accepted")
	}
}

// TestSource_Twin compares the batched step scores with a slow twin: one
// sequence at a time, the full softmax over the vocabulary at each tag,
// p(+) / (p(+) + p(−)).
func TestSource_Twin(t *testing.T) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model, cfg.Tok, cfg.BatchSize = b.Model, b.Tok, 3
	cfg.Spec = Spec{PlaceholderToken: "@", RewardTokens: []string{"+", "-"}}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	samples := []grade.Sample{
		{Prompt: "12+7-4=?\n", Response: "12+7=19\n19-4=15"},
		{Prompt: "3+4=?\n", Response: "3+4=8 @"},
		{Prompt: "Once upon a time", Response: ""},
		{Prompt: "5+5+5+5=?\n", Response: "5+5=10\n10+5=15\n15+5=20\n"},
		{Prompt: "9-1=?\n", Response: "9-1=8", Query: "9-1=?\n9-1=8"},
	}
	got, err := src.StepScores(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	if n := []int{len(got[0]), len(got[1]), len(got[2]), len(got[3]), len(got[4])}; !slices.Equal(n, []int{2, 1, 0, 3, 1}) {
		t.Fatalf("steps per sample %v, want [2 1 0 3 1]", n)
	}
	for i, s := range samples {
		ids, tags := src.Encode(s)
		pos := make([]int32, len(ids))
		for j := range pos {
			pos[j] = int32(j)
		}
		if len(ids) == 0 {
			continue
		}
		logits := b.Model.Forward(nil, ids, pos, nil, 1, len(ids))
		v := logits.Dim(-1)
		for j, tag := range tags {
			row := logits.Data[tag*v : (tag+1)*v]
			mx := slices.Max(row)
			var z float64
			for _, x := range row {
				z += math.Exp(float64(x - mx))
			}
			pp, pn := math.Exp(float64(row[src.pos]-mx))/z, math.Exp(float64(row[src.neg]-mx))/z
			if want := pp / (pp + pn); math.Abs(got[i][j]-want) > 1e-5 {
				t.Errorf("sample %d step %d: %v, twin %v", i, j, got[i][j], want)
			}
		}
	}
	res, err := src.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Reward != min(got[0][0], got[0][1]) || res[2].Reward != 0 || res[3].Extra["prm_steps"] != 3 {
		t.Fatalf("results %+v", res)
	}
}

func TestSpec_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	if IsPRM(dir) {
		t.Fatal("empty folder is a PRM")
	}
	s := Spec{PlaceholderToken: "ки", RewardTokens: []string{"+", "-"}}
	if err := WriteSpec(dir, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSpec(dir)
	if err != nil || !IsPRM(dir) || back.PlaceholderToken != s.PlaceholderToken || !slices.Equal(back.RewardTokens, s.RewardTokens) {
		t.Fatalf("%+v %v", back, err)
	}
	if _, err := ReadSpec(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing prm.json read")
	}
}
