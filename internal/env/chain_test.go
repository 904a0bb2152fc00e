package env

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// chainOracle answers the last problem of the transcript.
func chainOracle(_ context.Context, transcript string) (string, error) {
	lines := strings.Split(transcript, "\n")
	v, err := parseProblem(lines[len(lines)-1])
	return strconv.FormatInt(v, 10), err
}

func TestChain_Oracle(t *testing.T) {
	ctx := context.Background()
	f, err := Open("chain", "steps=4,max_add=9,cap=98,seed=3")
	if err != nil {
		t.Fatal(err)
	}
	for a := 10; a <= 98; a += 7 {
		prompt := fmt.Sprintf("%d+%d=", a, a%10)
		if a+a%10 > 98 {
			prompt = fmt.Sprintf("%d-%d=", a, 3)
		}
		ep, err := Run(ctx, f(), prompt, "", chainOracle, DefaultRunConfig())
		if err != nil {
			t.Fatal(err)
		}
		if !ep.Done || len(ep.Turns) != 4 || ep.Return != 1 {
			t.Fatalf("%s: done %v, %d turns, return %g", prompt, ep.Done, len(ep.Turns), ep.Return)
		}
		// every follow-up restates the right value and keeps results ≤ cap
		for i, turn := range ep.Turns[:3] {
			v, err := parseProblem(strings.TrimPrefix(turn.Feedback, "\n"))
			if err != nil || !strings.HasPrefix(turn.Feedback, "\n"+turn.Action+"+") || v > 98 {
				t.Fatalf("%s turn %d: feedback %q after %q (value %d, %v)", prompt, i+1, turn.Feedback, turn.Action, v, err)
			}
		}
		if ep.Turns[3].Feedback != "" {
			t.Fatalf("%s: the last step has feedback %q", prompt, ep.Turns[3].Feedback)
		}
		// the same prompt gives the same follow-ups; the transcript is the
		// prompt, then the actions and the feedback
		again, _ := Run(ctx, f(), prompt, "", chainOracle, DefaultRunConfig())
		if again.Transcript != ep.Transcript || !strings.HasPrefix(ep.Transcript, prompt) {
			t.Fatalf("%s: transcripts %q and %q", prompt, ep.Transcript, again.Transcript)
		}
	}
}

func TestChain_WrongAnswers(t *testing.T) {
	ctx := context.Background()
	c, err := NewChain(ChainConfig{Steps: 3, MaxAdd: 5, Cap: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Run(ctx, c, "23+4=", "", scripted("26", " 27 ", "x"), DefaultRunConfig())
	if err != nil {
		t.Fatal(err)
	}
	// "26" is wrong, and the next question still builds on the right 27;
	// " 27 " is not the answer to that question (27 + b) unless b = 0
	if ep.Turns[0].Reward != 0 || !strings.HasPrefix(ep.Turns[0].Feedback, "\n27+") {
		t.Fatalf("turn 1: %+v", ep.Turns[0])
	}
	b, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(ep.Turns[0].Feedback, "\n27+"), "="))
	if want := map[bool]float64{true: 1.0 / 3, false: 0}[b == 0]; ep.Turns[1].Reward != want {
		t.Fatalf("turn 2: reward %g for %q after %q", ep.Turns[1].Reward, ep.Turns[1].Action, ep.Turns[0].Feedback)
	}
	if ep.Turns[2].Reward != 0 || !ep.Done {
		t.Fatalf("turn 3: %+v, done %v", ep.Turns[2], ep.Done)
	}
	// a trimmed exact number is right
	c2, _ := NewChain(ChainConfig{Steps: 1, MaxAdd: 5, Cap: 50})
	if ep, _ := Run(ctx, c2, "23+4=", "", scripted(" 27\n"), DefaultRunConfig()); ep.Return != 1 {
		t.Fatalf("%q scored %g", " 27\n", ep.Return)
	}
}

func TestChain_Errors(t *testing.T) {
	ctx := context.Background()
	c, _ := NewChain(DefaultChainConfig())
	if _, _, _, err := c.Step(ctx, "1"); err == nil {
		t.Fatal("Step before Reset worked")
	}
	for _, p := range []string{"", "Once upon a time", "2+=", "+3=", "-2+3=", "2*3=", "2+3"} {
		if _, err := c.Reset(ctx, p, ""); err == nil || !strings.Contains(err.Error(), "is not a problem") {
			t.Errorf("Reset(%q): %v", p, err)
		}
	}
	c1, _ := NewChain(ChainConfig{Steps: 1, MaxAdd: 9, Cap: 98})
	c1.Reset(ctx, "1+1=", "")
	c1.Step(ctx, "2")
	if _, _, _, err := c1.Step(ctx, "2"); err == nil {
		t.Fatal("Step after the end worked")
	}
	for _, cfg := range []ChainConfig{{Steps: 0, MaxAdd: 9}, {Steps: 1, MaxAdd: -1}, {Steps: 1, Cap: -1}} {
		if _, err := ChainFactory(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := Open("chain", "max=3"); err == nil || !strings.Contains(err.Error(), `unknown argument "max"`) {
		t.Fatalf("Open(chain, max=3): %v", err)
	}
}

func TestChain_NewlineActions(t *testing.T) {
	// An action that ends its line (a "\n" stop string) gets the next
	// question without another newline: the transcript reads the same.
	ctx := context.Background()
	f, _ := ChainFactory(DefaultChainConfig())
	plain, _ := Run(ctx, f(), "23+4=", "", chainOracle, DefaultRunConfig())
	withNL, err := Run(ctx, f(), "23+4=", "", func(ctx context.Context, tr string) (string, error) {
		a, err := chainOracle(ctx, tr)
		return a + "\n", err
	}, DefaultRunConfig())
	if err != nil {
		t.Fatal(err)
	}
	if withNL.Transcript != plain.Transcript+"\n" || withNL.Return != 1 {
		t.Fatalf("with newlines %q (return %g), plain %q", withNL.Transcript, withNL.Return, plain.Transcript)
	}
}
