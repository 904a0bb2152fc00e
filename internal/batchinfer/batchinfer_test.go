package batchinfer

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func rec(in, out string, r float64) Record { return Record{Input: in, Output: out, Reward: &r} }

func TestRejectionSampling(t *testing.T) {
	recs := []Record{rec("a", "a1", 0.1), rec("b", "b1", 2), rec("a", "a2", 0.5), rec("b", "b2", 2), rec("a", "a3", 0.2)}
	got, err := RejectionSampling(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{recs[2], recs[1]} // a's best; b's first of the tied best
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := RejectionSampling([]Record{{Input: "a"}}); err == nil {
		t.Fatal("a record without reward accepted")
	}
}

func TestIterativeDPO(t *testing.T) {
	recs := []Record{rec("a", "a1", 0.3), rec("b", "b1", 1), rec("a", "a2", 0.9), rec("b", "b2", 1), rec("a", "a3", -1), rec("a", "a4", -1)}
	pairs, ties, err := IterativeDPO(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{{Prompt: "a", Chosen: "a2", ChosenReward: 0.9, Rejected: "a3", RejectedReward: -1}}
	if ties != 1 || !reflect.DeepEqual(pairs, want) {
		t.Fatalf("pairs %+v ties %d, want %+v and 1 tie", pairs, ties, want)
	}
}

func TestMeanStd(t *testing.T) {
	m, s := MeanStd([]Record{rec("a", "", 1), rec("a", "", 3), {Input: "x"}})
	if m != 2 || s != 1.4142135623730951 {
		t.Fatalf("mean %v std %v", m, s)
	}
}

// TestGenerate_OrderAndSeeds generates with the embedded model: records
// come sample-major (every prompt's first sample, then the second), and a
// prompt's samples do not depend on the other prompts.
func TestGenerate_OrderAndSeeds(t *testing.T) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := generate.New(b.Model.(model.Decoder), b.Tok, generate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	enc := data.PromptEncoder{Tok: b.Tok, BOS: b.BOS()}
	var prompts []data.Prompt
	for _, s := range []string{"Once upon a time", "Tom had a ball.", "The sun was"} {
		p, err := enc.Text(s)
		if err != nil {
			t.Fatal(err)
		}
		prompts = append(prompts, p)
	}
	sp := generate.SamplingParams{MaxNewTokens: 12, Temperature: 1, Seed: 7}
	all, err := Generate(context.Background(), eng, prompts, 2, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[0].Input != "Once upon a time" || all[1].Input != "Tom had a ball." || all[3].Input != "Once upon a time" {
		t.Fatalf("records %+v", all)
	}
	if all[0].Output == all[3].Output {
		t.Fatalf("a prompt's two samples are the same: %q", all[0].Output)
	}
	// prompt 1 alone, with its seed (seed+1), gives what it gave in the batch
	sp.Seed = 8
	one, err := Generate(context.Background(), eng, prompts[1:2], 2, sp)
	if err != nil {
		t.Fatal(err)
	}
	if one[0].Output != all[1].Output || one[1].Output != all[4].Output {
		t.Fatalf("alone %q %q, in the batch %q %q", one[0].Output, one[1].Output, all[1].Output, all[4].Output)
	}
}

// TestReadScoreWrite round-trips records through a file and scores them
// with a rule grader from their labels.
func TestReadScoreWrite(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "gen.jsonl")
	if err := os.WriteFile(in, []byte(`{"input":"2+2=","output":"4","label":"4"}`+"\n"+`{"input":"2+2=","output":"5","label":"4"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadRecords(in, 0, "input", "output", "label")
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(SourceOptions{Rule: grade.RuleConfig{Kind: grade.RuleExact}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Score(context.Background(), src, recs, 1); err != nil {
		t.Fatal(err)
	}
	if *recs[0].Reward != 1 || *recs[1].Reward != 0 {
		t.Fatalf("rewards %v %v", *recs[0].Reward, *recs[1].Reward)
	}
	out := filepath.Join(dir, "sub", "rs.jsonl")
	best, _ := RejectionSampling(recs)
	if err := WriteJSONL(out, best); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != `{"input":"2+2=","output":"4","reward":1,"label":"4"}` {
		t.Fatalf("wrote %s", got)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"input":"x"}`+"\n"), 0o644)
	if _, err := ReadRecords(bad, 0, "input", "output", ""); err == nil || !strings.Contains(err.Error(), bad+`:1: no "output" field`) {
		t.Fatalf("error %v", err)
	}
	if _, err := OpenSource(SourceOptions{Model: load.DefaultModel}); err == nil || !strings.Contains(err.Error(), "prm.json") {
		t.Fatalf("a causal LM without prm.json as reward model: %v", err)
	}
}
