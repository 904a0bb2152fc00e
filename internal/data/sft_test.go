package data

import (
	"strings"
	"testing"
)

func TestEncoder_SFT(t *testing.T) {
	cases := []struct {
		name     string
		chat     bool
		template string
		keys     SFTKeys
		record   string
		want     string // decoded loss tokens, runs joined by "|"
	}{
		{"PlainWithInputTemplate", false, "User: {}\nAssistant: ", SFTKeys{InputKey: "q", OutputKey: "a"},
			`{"q": "Where is Tim?", "a": "Tim is in the park."}`, "Tim is in the park.</s>"},
		{"PlainNoTemplate", false, "", SFTKeys{InputKey: "q", OutputKey: "a"},
			`{"q": "Once upon a time", "a": " there was a cat."}`, "there was a cat.</s>"},
		{"Pretrain", false, "", SFTKeys{InputKey: "text", PretrainMode: true},
			`{"text": "Lily saw a dog."}`, "Lily saw a dog.</s>"},
		{"ChatStrings", true, "", SFTKeys{InputKey: "q", OutputKey: "a"},
			`{"q": "hi", "a": "hello there"}`, "hello there</s>"},
		{"ChatLastTurn", true, "", SFTKeys{InputKey: "m"},
			`{"m": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "one"}, {"role": "user", "content": "more"}, {"role": "assistant", "content": "two"}]}`,
			"two</s>"},
		{"ChatMultiturn", true, "", SFTKeys{InputKey: "m", Multiturn: true},
			`{"m": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "one"}, {"role": "user", "content": "more"}, {"role": "assistant", "content": "two"}]}`,
			"one</s> \n|two</s>"}, // a turn ends where its rendering ends, newline included (OpenRLHF)
		{"ChatMultiturnWithOutputKey", true, "", SFTKeys{InputKey: "m", OutputKey: "r", Multiturn: true},
			`{"m": [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "one"}, {"role": "user", "content": "more"}], "r": "two"}`,
			"one</s> \n|two</s>"}, // a turn ends where its rendering ends, newline included (OpenRLHF)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := encoder(t, c.chat, c.template, 256)
			recs := records(t, c.record)
			s, truncated, err := e.SFT(recs[0], c.keys)
			if err != nil || truncated {
				t.Fatalf("SFT: %v (truncated %v)", err, truncated)
			}
			if s.IDs[0] != 1 || s.Loss[0] {
				t.Fatalf("sample does not start with an untrained BOS: %v", s.IDs[:3])
			}
			if s.IDs[len(s.IDs)-1] != 2 || !s.Loss[len(s.Loss)-1] {
				t.Fatalf("sample does not end with a trained EOS")
			}
			got := strings.TrimSpace(strings.ReplaceAll(lossText(e.Tok, s), "| ", "|"))
			if got != c.want {
				t.Fatalf("loss tokens decode to %q, want %q", got, c.want)
			}
		})
	}
}

// TestEncoder_SFT_Boundary checks the loss starts at the token that holds
// the first response byte even when BPE merges across the boundary.
func TestEncoder_SFT_Boundary(t *testing.T) {
	e := encoder(t, false, "User: {}\nAssistant: ", 256)
	s, _, err := e.SFT(records(t, `{"q": "hi", "a": "yo there"}`)[0], SFTKeys{InputKey: "q", OutputKey: "a"})
	if err != nil {
		t.Fatal(err)
	}
	prompt := e.Tok.Encode("User: hi\nAssistant: ")
	p := s.PromptLen()
	// The prompt alone ends with a lone "▁" that the full text merges into "▁yo".
	if p != len(prompt) || s.IDs[p] == int32(prompt[len(prompt)-1]) {
		t.Fatalf("prompt length %d, prompt alone has %d tokens ending %d; first loss token %d", p, len(prompt), prompt[len(prompt)-1], s.IDs[p])
	}
}

func TestEncoder_SFTSamples_Skips(t *testing.T) {
	e := encoder(t, false, "", 12)
	recs := records(t, strings.Join([]string{
		`{"q": "Hi", "a": "Yes."}`,
		`{"q": "Once upon a time there was a little girl named Lily who liked to play", "a": "ok"}`,
		`{"q": "Hi"}`,
		`{"q": "Hi", "a": ""}`,
		`{"q": "A cat", "a": " sat on the mat and looked at the big red ball all day long"}`,
		`{"q": [{"role": "user", "content": "x"}], "a": "y"}`,
	}, "\n"))
	samples, rep, err := e.SFTSamples("t", recs, SFTKeys{InputKey: "q", OutputKey: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || rep.Used != 2 || rep.Truncated != 1 {
		t.Fatalf("kept %d, report %s", len(samples), rep)
	}
	for _, s := range samples {
		if s.Len() > 12 {
			t.Fatalf("sample of %d tokens exceeds max_len 12", s.Len())
		}
	}
	wants := map[string]int{"prompt too long for max_len 12": 2, `missing key "a"`: 3, "empty response": 4,
		`key "q" holds messages: use --data.apply_chat_template`: 6}
	for reason, line := range wants {
		if ps := rep.Skipped[reason]; len(ps) != 1 || ps[0].Line != line {
			t.Errorf("skip %q at %v, want line %d (report %s)", reason, ps, line, rep)
		}
	}
	t.Run("NoneUsable", func(t *testing.T) {
		_, _, err := e.SFTSamples("t", recs[2:4], SFTKeys{InputKey: "q", OutputKey: "a"})
		if err == nil || !strings.Contains(err.Error(), "no usable record") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		if _, _, err := e.SFTSamples("t", recs, SFTKeys{InputKey: "q"}); err == nil {
			t.Fatal("SFT without output key or template accepted")
		}
		if _, _, err := e.SFTSamples("t", recs, SFTKeys{InputKey: "q", OutputKey: "a", Multiturn: true}); err == nil {
			t.Fatal("multiturn without a chat template accepted")
		}
	})
}
