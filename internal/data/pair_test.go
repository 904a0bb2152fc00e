package data

import (
	"strings"
	"testing"
)

func TestEncoder_Pair(t *testing.T) {
	cases := []struct {
		name           string
		chat           bool
		keys           PairKeys
		record         string
		prompt         string // decoded tokens before the loss
		chosen, reject string // decoded loss tokens
	}{
		{"PlainNoPrompt", false, PairKeys{ChosenKey: "chosen", RejectedKey: "rejected"},
			`{"chosen": "I love it.", "rejected": "I hate it."}`, "<s>", "I love it.</s>", "I hate it.</s>"},
		{"PlainPrompt", false, PairKeys{PromptKey: "p", ChosenKey: "c", RejectedKey: "r", MarginKey: "margin"},
			`{"p": "Tom said", "c": " yes", "r": " no", "margin": 0.5}`, "<s> Tom said", "yes</s>", "no</s>"},
		{"HHTranscript", false, PairKeys{ChosenKey: "chosen", RejectedKey: "rejected"},
			`{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}`,
			"<s>", "\n\nHuman: hi\n\nAssistant: hello</s>", "\n\nHuman: hi\n\nAssistant: go away</s>"},
		{"ChatPromptKey", true, PairKeys{PromptKey: "p", ChosenKey: "c", RejectedKey: "r"},
			`{"p": "hi", "c": "hello", "r": "go"}`, "<s> <|user|>\nhi</s> \n<|assistant|>\n", "hello</s>", "go</s>"},
		{"ChatDPOLastTurn", true, PairKeys{ChosenKey: "c", RejectedKey: "r", DPO: true},
			`{"c": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "r": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go"}]}`,
			"<s> <|user|>\nhi</s> \n<|assistant|>\n", "hello</s>", "go</s>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := encoder(t, c.chat, "", 256)
			p, truncated, err := e.Pair(records(t, c.record)[0], c.keys)
			if err != nil || truncated {
				t.Fatalf("Pair: %v (truncated %v)", err, truncated)
			}
			ids := func(s Sample) []int {
				out := make([]int, s.PromptLen())
				for i := range out {
					out[i] = int(s.IDs[i])
				}
				return out
			}
			for _, s := range []Sample{p.Chosen, p.Rejected} {
				if got := e.Tok.Decode(ids(s)); got != c.prompt {
					t.Errorf("prompt decodes to %q, want %q", got, c.prompt)
				}
			}
			trim := func(s string) string { return strings.TrimPrefix(s, " ") }
			if got := trim(lossText(e.Tok, p.Chosen)); got != c.chosen {
				t.Errorf("chosen decodes to %q, want %q", got, c.chosen)
			}
			if got := trim(lossText(e.Tok, p.Rejected)); got != c.reject {
				t.Errorf("rejected decodes to %q, want %q", got, c.reject)
			}
			if c.keys.MarginKey != "" && p.Margin != 0.5 {
				t.Errorf("margin %v", p.Margin)
			}
		})
	}
}

func TestEncoder_Pairs_TruncateAndSkip(t *testing.T) {
	e := encoder(t, false, "", 10)
	recs := records(t, strings.Join([]string{
		`{"chosen": "The big dog ran to the park and played with a ball all day", "rejected": "No."}`,
		`{"p": "x", "chosen": "a"}`,
		`{"p": "Once upon a time there was a girl named Lily", "chosen": "a", "rejected": "b"}`,
	}, "\n"))
	pairs, rep, err := e.Pairs("t", recs, PairKeys{ChosenKey: "chosen", RejectedKey: "rejected"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || rep.Truncated != 1 || rep.SkipCount[`missing key "rejected"`] != 1 {
		t.Fatalf("%d pairs, report %s", len(pairs), rep)
	}
	c := pairs[0].Chosen
	if c.Len() != 10 || c.IDs[9] != e.EOS {
		t.Fatalf("truncated chosen has %d tokens ending %d, want 10 ending EOS", c.Len(), c.IDs[c.Len()-1])
	}
	_, rep, _ = e.Pairs("t", recs[2:], PairKeys{PromptKey: "p", ChosenKey: "chosen", RejectedKey: "rejected"})
	if rep.SkipCount["prompt too long for max_len 10"] != 1 {
		t.Fatalf("long prompt not skipped: %s", rep)
	}
}
