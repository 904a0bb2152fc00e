package recipe

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateStepData = flag.Bool("update", false, "rewrite recipes/data/prm_arithmetic_*.jsonl from StepData")

// stepDataDir is where the shipped PRM dataset lives.
var stepDataDir = filepath.Join("..", "..", "recipes", "data")

// TestStepData_Shipped checks that the committed PRM dataset is exactly
// what DefaultStepDataConfig generates (its provenance); -update rewrites
// it.
func TestStepData_Shipped(t *testing.T) {
	train, held, err := DefaultStepDataConfig().StepData()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name    string
		samples []StepSample
	}{{"prm_arithmetic_train.jsonl", train}, {"prm_arithmetic_eval.jsonl", held}} {
		path := filepath.Join(stepDataDir, f.name)
		if *updateStepData {
			if err := WriteStepData(path, f.samples); err != nil {
				t.Fatal(err)
			}
		}
		tmp := filepath.Join(t.TempDir(), f.name)
		if err := WriteStepData(tmp, f.samples); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(tmp)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (write it with go test ./internal/recipe -run TestStepData_Shipped -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from StepData's output (regenerate with -update)", path)
		}
	}
}

// TestStepData_Labels checks the labelling rule, the split and the balance.
func TestStepData_Labels(t *testing.T) {
	c := DefaultStepDataConfig()
	train, held, err := c.StepData()
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != c.Train || len(held) != c.HeldOut {
		t.Fatalf("%d/%d samples, want %d/%d", len(train), len(held), c.Train, c.HeldOut)
	}
	wrong := 0
	for _, s := range append(append([]StepSample(nil), train...), held...) {
		if n := strings.Count(s.Input, c.Tag); n != len(s.Label) {
			t.Fatalf("%q: %d tags, %d labels", s.Input, n, len(s.Label))
		}
		// once negative, negative to the end; the last step is right
		// exactly when its value is the answer
		neg := false
		for _, l := range s.Label {
			if neg && l != c.Negative {
				t.Fatalf("%q %v: a positive step after a negative one", s.Input, s.Label)
			}
			neg = neg || l == c.Negative
		}
		lines := strings.Split(s.Input, "\n")
		last := lines[len(lines)-1]
		value := strings.TrimSuffix(last[strings.Index(last, "=")+1:], " "+c.Tag)
		if (value == s.Answer) == neg {
			t.Fatalf("%q %v: last value %s, answer %s", s.Input, s.Label, value, s.Answer)
		}
		if neg {
			wrong++
		}
	}
	if f := float64(wrong) / float64(len(train)+len(held)); f < 0.4 || f > 0.6 {
		t.Errorf("%.2f of solutions wrong, want about half", f)
	}
	heldFirst := map[string]bool{}
	for _, s := range held {
		heldFirst[strings.FieldsFunc(s.Input, func(r rune) bool { return r == '+' || r == '-' })[0]] = true
	}
	for _, s := range train {
		if heldFirst[strings.FieldsFunc(s.Input, func(r rune) bool { return r == '+' || r == '-' })[0]] {
			t.Fatalf("training chain %q starts like a held-out one", s.Input)
		}
	}
}
