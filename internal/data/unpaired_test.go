package data

import (
	"strings"
	"testing"
)

// TestReadUnpaired: labels as booleans or 0/1, the prompt masked, a bad
// label skipped and reported, a chat input whose last turn is the response,
// and a mismatched sequence built from two samples.
func TestReadUnpaired(t *testing.T) {
	path := writeFile(t, "kto.jsonl", `{"input": "Q1", "output": " good", "label": true}
{"input": "Q2", "output": " bad", "label": 0}
{"input": "Q3", "output": " x", "label": "maybe"}
{"input": "Q4", "output": " fine", "label": 1}
`)
	e := encoder(t, false, "", 64)
	us, rep, err := e.ReadUnpaired(path, 0, UnpairedKeys{InputKey: "input", OutputKey: "output", LabelKey: "label"})
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 3 || rep.SkippedTotal() != 1 || !strings.Contains(rep.String(), `key "label" is not a label`) {
		t.Fatalf("%d samples, report %s", len(us), rep)
	}
	if !us[0].Desirable || us[1].Desirable || !us[2].Desirable {
		t.Errorf("labels %v %v %v", us[0].Desirable, us[1].Desirable, us[2].Desirable)
	}
	if got := lossText(e.Tok, us[0].Sample); got != "good</s>" && got != " good</s>" {
		t.Errorf("loss tokens %q", got)
	}
	m := e.Mismatched(us[0], us[1])
	if e.Tok.Decode(ints(m.IDs[1:m.PromptLen()])) != "Q1" || lossText(e.Tok, m) != lossText(e.Tok, us[1].Sample) {
		t.Errorf("mismatched %q / %q", e.Tok.Decode(ints(m.IDs)), lossText(e.Tok, m))
	}
	if _, _, err := e.ReadUnpaired(path, 0, UnpairedKeys{InputKey: "input", LabelKey: "label"}); err == nil || !strings.Contains(err.Error(), "--data.output_key") {
		t.Errorf("no output key without a chat template: %v", err)
	}
	chat := writeFile(t, "chat.jsonl", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "label": false}`+"\n")
	ce := encoder(t, true, "", 64)
	cu, _, err := ce.ReadUnpaired(chat, 0, UnpairedKeys{InputKey: "messages", LabelKey: "label"})
	if err != nil || len(cu) != 1 || cu[0].Desirable || !strings.Contains(cu[0].Response, "Hello") || strings.Contains(cu[0].Prompt, "Hello") {
		t.Fatalf("chat: %+v, %v", cu, err)
	}
}
