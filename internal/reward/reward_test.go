package reward

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func TestFunc_Score(t *testing.T) {
	f := Func(func(_ context.Context, s grade.Sample) (float64, error) {
		if s.Label == "bad" {
			return 0, errors.New("boom")
		}
		return float64(len(s.Text())), nil
	})
	rs, err := f.Score(context.Background(), []grade.Sample{{Prompt: "ab", Response: "c"}, {Query: "wxyz", Prompt: "ignored"}})
	if err != nil || rs[0].Reward != 3 || rs[1].Reward != 4 || rs[1].Score != 4 {
		t.Errorf("results %+v, %v", rs, err)
	}
	if _, err := f.Score(context.Background(), []grade.Sample{{}, {Label: "bad"}}); err == nil || !strings.Contains(err.Error(), "sample 1: boom") {
		t.Errorf("error %v", err)
	}
	nan := Func(func(context.Context, grade.Sample) (float64, error) { return 0 / zero(), nil })
	if _, err := nan.Score(context.Background(), []grade.Sample{{}}); err == nil || !strings.Contains(err.Error(), "not finite") {
		t.Errorf("NaN reward: error %v", err)
	}
}

func zero() float64 { return 0 }
