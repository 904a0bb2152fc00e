package recipe

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

// TestXP runs the demo with overrides from $GORLHF_RLVR_XP (JSON of
// ArithmeticDemo fields). Temporary experiment harness.
func TestXP(t *testing.T) {
	js := os.Getenv("GORLHF_RLVR_XP")
	if js == "" {
		t.Skip("set GORLHF_RLVR_XP")
	}
	d := DefaultArithmeticDemo()
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatal(err)
	}
	d.Console = os.Stderr
	sum, err := RunArithmeticDemo(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	sum.Base.Answers, sum.SFT.Answers, sum.RL.Answers = nil, nil, nil
	b, _ := json.Marshal(sum)
	t.Logf("%s", b)
}
