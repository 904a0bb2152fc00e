package env

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// oracle solves the arithmetic game from the transcript alone: it replays
// every question it can read there. It proves the observations are enough
// to solve the task.
func oracle(_ context.Context, transcript string) (string, error) {
	var v int64
	found := false
	for _, line := range strings.Split(transcript, "\n") {
		var a, b int64
		switch {
		case scan(line, "Q%d: What is %d * %d?", &a, &b):
			v, found = a*b, true
		case scan(line, "Q%d: Add %d to the previous answer.", &a):
			v += a
		case scan(line, "Q%d: Subtract %d from the previous answer.", &a):
			v -= a
		case scan(line, "Q%d: Multiply the previous answer by %d.", &a):
			v *= a
		}
	}
	if !found {
		return "", errors.New("oracle: no question in the transcript")
	}
	return strconv.FormatInt(v, 10), nil
}

// scan matches line against format whose first %d is the question number
// (skipped); the rest fill out.
func scan(line, format string, out ...*int64) bool {
	var n int64
	args := append([]any{&n}, anys(out)...)
	k, err := fmt.Sscanf(line, format, args...)
	return err == nil && k == len(args)
}

func anys(ps []*int64) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// scripted returns a policy that plays actions in order.
func scripted(actions ...string) Policy {
	i := 0
	return func(context.Context, string) (string, error) {
		if i >= len(actions) {
			return "", errors.New("script exhausted")
		}
		i++
		return actions[i-1], nil
	}
}

func newArith(t *testing.T, cfg ArithmeticConfig) *Arithmetic {
	t.Helper()
	a, err := NewArithmetic(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRun_ArithmeticOracle(t *testing.T) {
	for _, steps := range []int{1, 3, 6} {
		for seed := range uint64(20) {
			cfg := ArithmeticConfig{Steps: steps, Max: 12, Seed: seed}
			ep, err := Run(context.Background(), newArith(t, cfg), "Solve each question.\n", "", oracle, DefaultRunConfig())
			if err != nil {
				t.Fatal(err)
			}
			if !ep.Done || len(ep.Turns) != steps || math.Abs(ep.Return-1) > 1e-12 {
				t.Fatalf("steps %d seed %d: done %v, %d turns, return %g; transcript:\n%s", steps, seed, ep.Done, len(ep.Turns), ep.Return, ep.Transcript)
			}
			for i, s := range ep.Actions {
				if ep.Transcript[s.Start:s.End] != ep.Turns[i].Action {
					t.Fatalf("span %v holds %q, action %q", s, ep.Transcript[s.Start:s.End], ep.Turns[i].Action)
				}
			}
		}
	}
}

// TestRun_Arithmetic plays a fixed seed with scripted answers and checks
// the exact transcript and rewards.
func TestRun_Arithmetic(t *testing.T) {
	a := newArith(t, ArithmeticConfig{Steps: 3, Max: 9, Seed: 5})
	qs, ans := a.Problem(5)
	if len(qs) != 3 || len(ans) != 3 || !strings.HasPrefix(qs[0], "What is ") {
		t.Fatalf("problem %q %v", qs, ans)
	}
	a0, a1, a2 := strconv.FormatInt(ans[0], 10), strconv.FormatInt(ans[1], 10), strconv.FormatInt(ans[2], 10)
	cases := []struct {
		name    string
		actions []string
		want    float64
		wrong   []bool
	}{
		{"all right", []string{a0, " " + a1 + "\n", a2}, 1, []bool{false, false, false}},
		{"formats", []string{"#### " + a0, `so \boxed{` + a1 + `}`, "The answer is " + a2 + "."}, 1, []bool{false, false, false}},
		{"second wrong", []string{a0, a1 + "1", a2}, 2.0 / 3, []bool{false, true, false}},
		{"no number", []string{"I don't know", "?", a2}, 1.0 / 3, []bool{true, true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep, err := Run(context.Background(), a, "P\n", "", scripted(c.actions...), DefaultRunConfig())
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ep.Return-c.want) > 1e-12 || !ep.Done || len(ep.Turns) != 3 {
				t.Errorf("return %g done %v turns %d, want %g", ep.Return, ep.Done, len(ep.Turns), c.want)
			}
			want := "P\nQ1: " + qs[0] + "\nA: "
			for i, act := range c.actions {
				fb := "\nCorrect.\n"
				if c.wrong[i] {
					fb = fmt.Sprintf("\nWrong, the answer is %d.\n", ans[i])
				}
				if i+1 < len(qs) {
					fb += fmt.Sprintf("Q%d: %s\nA: ", i+2, qs[i+1])
				}
				want += act + fb
				if got := ep.Turns[i].Feedback; got != fb {
					t.Errorf("turn %d feedback %q, want %q", i+1, got, fb)
				}
			}
			if ep.Transcript != want {
				t.Errorf("transcript\n%q\nwant\n%q", ep.Transcript, want)
			}
		})
	}
}

func TestArithmetic_Seeds(t *testing.T) {
	a := newArith(t, ArithmeticConfig{Steps: 4, Max: 50, Seed: 1})
	first, _ := a.Reset(context.Background(), "", "")
	again, _ := a.Reset(context.Background(), "", "")
	viaLabel, _ := a.Reset(context.Background(), "", " 1 ")
	other, _ := a.Reset(context.Background(), "", "2")
	if first != again || first != viaLabel || first == other {
		t.Errorf("observations %q %q %q %q: want the first three equal and the last different", first, again, viaLabel, other)
	}
	seen := map[string]bool{}
	ops := regexp.MustCompile(`^(Add|Subtract|Multiply)`)
	kinds := map[string]bool{}
	for seed := range uint64(200) {
		qs, _ := a.Problem(seed)
		seen[strings.Join(qs, "|")] = true
		for _, q := range qs[1:] {
			kinds[ops.FindString(q)] = true
		}
	}
	if len(seen) < 195 || len(kinds) != 3 {
		t.Errorf("%d distinct problems in 200 seeds, operations %v", len(seen), kinds)
	}
}

func TestRun_Limits(t *testing.T) {
	cfg := ArithmeticConfig{Steps: 3, Max: 9, Seed: 3}
	t.Run("max turns", func(t *testing.T) {
		ep, err := Run(context.Background(), newArith(t, cfg), "", "", oracle, RunConfig{MaxTurns: 2})
		if err != nil || ep.Done || len(ep.Turns) != 2 || math.Abs(ep.Return-2.0/3) > 1e-12 {
			t.Errorf("episode %+v, %v", ep, err)
		}
	})
	t.Run("policy error", func(t *testing.T) {
		ep, err := Run(context.Background(), newArith(t, cfg), "", "", scripted("1"), DefaultRunConfig())
		if ep != nil || err == nil || !strings.Contains(err.Error(), "turn 2: policy: script exhausted") {
			t.Errorf("episode %v, error %v", ep, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		policy := func(ctx context.Context, tr string) (string, error) { cancel(); return oracle(ctx, tr) }
		_, err := Run(ctx, newArith(t, cfg), "", "", policy, DefaultRunConfig())
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "turn 2") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		if _, err := Run(context.Background(), newArith(t, cfg), "", "", oracle, RunConfig{}); err == nil {
			t.Error("MaxTurns 0: no error")
		}
		if _, err := Run(context.Background(), nil, "", "", oracle, DefaultRunConfig()); err == nil {
			t.Error("nil env: no error")
		}
	})
	t.Run("step outside an episode", func(t *testing.T) {
		a := newArith(t, cfg)
		if _, _, _, err := a.Step(context.Background(), "1"); err == nil {
			t.Error("Step before Reset: no error")
		}
		if _, err := Run(context.Background(), a, "", "", oracle, DefaultRunConfig()); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := a.Step(context.Background(), "1"); err == nil {
			t.Error("Step after the end: no error")
		}
	})
}

func TestArithmeticConfig_Validate(t *testing.T) {
	for _, c := range []ArithmeticConfig{{Steps: 0, Max: 9}, {Steps: 2, Max: 0}, {Steps: 2, Max: 2_000_000}} {
		if _, err := NewArithmetic(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
		if _, err := ArithmeticFactory(c); err == nil {
			t.Errorf("factory %+v: no error", c)
		}
	}
	f, err := ArithmeticFactory(DefaultArithmeticConfig())
	if err != nil {
		t.Fatal(err)
	}
	if e1, e2 := f(), f(); e1 == e2 {
		t.Error("factory returned the same instance twice")
	}
}
