package recipe

import (
	"context"
	"os"
	"testing"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

func tok512(t testing.TB) tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// completion is the token ids of text as an answer, ended by EOS.
func completion(tok tokenizer.Tokenizer, text string, eos bool) generate.Completion {
	full := EncodePrompt(tok, "23+4="+text)
	prompt := EncodePrompt(tok, "23+4=")
	c := generate.Completion{Tokens: append([]int32(nil), full[len(prompt):]...)}
	if eos {
		c.Tokens = append(c.Tokens, int32(tok.Specials().EOS))
	}
	return c
}

func TestGrade(t *testing.T) {
	tok := tok512(t)
	eos := int32(tok.Specials().EOS)
	ps := []Problem{{23, 4, '+'}, {23, 4, '+'}}
	res := []generate.Result{
		{Completions: []generate.Completion{completion(tok, "27", true), completion(tok, "28", true), completion(tok, "27", false)}},
		{Completions: []generate.Completion{completion(tok, "2", true), completion(tok, "27", true), completion(tok, "27 and", true)}},
	}
	got, err := gradeAll(ps, res, tok, eos)
	if err != nil {
		t.Fatal(err)
	}
	// right: "27"+EOS, "27" cut without EOS (the text is still "27"), and "27"+EOS
	if got.Correct != 3 || got.Total != 6 || got.Accuracy != 0.5 {
		t.Fatalf("%d of %d correct (accuracy %g), want 3 of 6", got.Correct, got.Total, got.Accuracy)
	}
	if len(got.Answers) != 2 || got.Answers[0].Response != "27" || !got.Answers[0].Correct || got.Answers[1].Correct {
		t.Fatalf("first answers %+v", got.Answers)
	}
}

func TestEncodePrompt(t *testing.T) {
	tok := tok512(t)
	ids := EncodePrompt(tok, "23+4=")
	enc := tok.Encode("23+4=")
	if int(ids[0]) != tok.Specials().BOS || len(ids) != len(enc)+1 {
		t.Fatalf("EncodePrompt = %v, Encode = %v", ids, enc)
	}
	if got := DecodeResponse(tok, ids[1:], -1); got != "23+4=" {
		t.Fatalf("round trip %q", got)
	}
}

func TestEvaluate(t *testing.T) {
	// stories260K has never seen arithmetic: the counts and determinism
	// are what is checked here; the demo measures real accuracy.
	m, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := tok512(t)
	ps := []Problem{{23, 4, '+'}, {40, 0, '+'}, {11, 9, '+'}}
	ctx := context.Background()
	g1, err := Evaluate(ctx, m.Model, tok, ps, Greedy())
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := Evaluate(ctx, m.Model, tok, ps, Greedy())
	if g1.Total != 3 || len(g1.Answers) != 3 || g1.Answers[1].Response != g2.Answers[1].Response {
		t.Fatalf("greedy: %d answers, %q then %q", g1.Total, g1.Answers[1].Response, g2.Answers[1].Response)
	}
	s, err := Evaluate(ctx, m.Model, tok, ps, Sampled(5))
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 24 {
		t.Fatalf("sampled: %d completions, want 3 × 8", s.Total)
	}
	for name, c := range map[string]EvalConfig{"no samples": {MaxNewTokens: 4}, "negative temperature": {Samples: 1, MaxNewTokens: 4, Temperature: -1}} {
		if _, err := Evaluate(ctx, m.Model, tok, ps, c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Evaluate(ctx, m.Model, tok, nil, Greedy()); err == nil {
		t.Error("no problems: no error")
	}
}
