package reward

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func TestMix_Score(t *testing.T) {
	math, _ := grade.NewRule(grade.RuleConfig{Kind: grade.RuleMath})
	format, _ := grade.NewRule(grade.RuleConfig{Kind: grade.RuleFormat})
	length := Func(func(_ context.Context, s grade.Sample) (float64, error) { return float64(len(s.Response)), nil })
	withExtra := sourceFunc(func(_ context.Context, ss []grade.Sample) ([]grade.Result, error) {
		out := make([]grade.Result, len(ss))
		for i := range out {
			out[i] = grade.Result{Reward: 2, Score: 0.5, Extra: map[string]float64{"k": float64(i)}}
		}
		return out, nil
	})
	mix, err := NewMix("", Part{"math", 1, math}, Part{"format", 0.5, format}, Part{"len", -0.1, length}, Part{"x", 1, withExtra})
	if err != nil {
		t.Fatal(err)
	}
	in := []grade.Sample{
		{Response: "#### 4", Label: "4"},    // right, formatted, 6 chars
		{Response: "it is 4", Label: "4"},   // right, unformatted, 7 chars
		{Response: `\boxed{5}`, Label: "4"}, // wrong, formatted, 9 chars
	}
	rs, err := mix.Score(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ reward, score, math, format float64 }{
		{1 + 0.5 - 0.6 + 2, 1 + 0.5 - 0.6 + 0.5, 1, 1},
		{1 + 0 - 0.7 + 2, 1 - 0.7 + 0.5, 1, 0},
		{0 + 0.5 - 0.9 + 2, 0.5 - 0.9 + 0.5, 0, 1},
	}
	for i, w := range want {
		r := rs[i]
		if !near(r.Reward, w.reward) || !near(r.Score, w.score) || r.Extra["math"] != w.math || r.Extra["format"] != w.format ||
			r.Extra["len"] != float64(len(in[i].Response)) || r.Extra["x"] != 2 || r.Extra["x/k"] != float64(i) || len(r.Extra) != 5 {
			t.Errorf("sample %d: %+v, want reward %g score %g", i, r, w.reward, w.score)
		}
	}
	t.Run("score from one part", func(t *testing.T) {
		m2, err := NewMix("math", Part{"rm", 1, length}, Part{"math", 0.5, math})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := m2.Score(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !near(rs[0].Reward, 6.5) || rs[0].Score != 1 || rs[2].Score != 0 {
			t.Errorf("results %+v", rs)
		}
	})
	t.Run("a part fails", func(t *testing.T) {
		boom := Func(func(context.Context, grade.Sample) (float64, error) { return 0, errors.New("boom") })
		m3, _ := NewMix("", Part{"math", 1, math}, Part{"bad", 1, boom})
		rs, err := m3.Score(context.Background(), in)
		if rs != nil || err == nil || !strings.Contains(err.Error(), `mix part "bad"`) || !strings.Contains(err.Error(), "boom") {
			t.Errorf("results %v, error %v", rs, err)
		}
	})
	t.Run("a part returns too few", func(t *testing.T) {
		short := sourceFunc(func(context.Context, []grade.Sample) ([]grade.Result, error) { return []grade.Result{{}}, nil })
		m4, _ := NewMix("", Part{"short", 1, short})
		if _, err := m4.Score(context.Background(), in); err == nil || !strings.Contains(err.Error(), "1 results for 3 samples") {
			t.Errorf("error %v", err)
		}
	})
}

type sourceFunc func(context.Context, []grade.Sample) ([]grade.Result, error)

func (f sourceFunc) Score(ctx context.Context, s []grade.Sample) ([]grade.Result, error) {
	return f(ctx, s)
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestNewMix_Errors(t *testing.T) {
	src := Func(func(context.Context, grade.Sample) (float64, error) { return 0, nil })
	cases := map[string]func() (*Mix, error){
		"empty":     func() (*Mix, error) { return NewMix("") },
		"no name":   func() (*Mix, error) { return NewMix("", Part{"", 1, src}) },
		"slash":     func() (*Mix, error) { return NewMix("", Part{"a/b", 1, src}) },
		"twice":     func() (*Mix, error) { return NewMix("", Part{"a", 1, src}, Part{"a", 2, src}) },
		"nil":       func() (*Mix, error) { return NewMix("", Part{"a", 1, nil}) },
		"bad score": func() (*Mix, error) { return NewMix("b", Part{"a", 1, src}) },
	}
	for name, f := range cases {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseWeights(t *testing.T) {
	ws, err := ParseWeights(" rm=1.0, format=0.5 ,math")
	if err != nil || len(ws) != 3 || ws[0] != (Weight{"rm", 1}) || ws[1] != (Weight{"format", 0.5}) || ws[2] != (Weight{"math", 1}) {
		t.Errorf("%v, %v", ws, err)
	}
	for _, bad := range []string{"", "rm=x", "rm=1,rm=2", "=1", "rm=NaN"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("ParseWeights(%q): no error", bad)
		}
	}
}
