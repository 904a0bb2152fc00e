package grade

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
)

func TestExtractAnswer(t *testing.T) {
	cases := []struct {
		text, want string
		form       AnswerForm
	}{
		{`so the total is \boxed{42}.`, "42", FormBoxed},
		{`\boxed{1} then \boxed{\frac{1}{2}}`, `\frac{1}{2}`, FormBoxed},
		{`\boxed{\text{ {nested} }}`, `\text{ {nested} }`, FormBoxed},
		{`first \boxed{7} and a cut-off \boxed{\frac{1}{`, "7", FormBoxed},
		{`\fbox{9}`, "9", FormBoxed},
		{`hence \boxed 5.`, "5", FormBoxed},
		{"She makes $18.\n#### 18", "18", FormHashes},
		{"#### 3\n#### 4\nextra 99", "4", FormHashes},
		{"#### $70,000.", "$70,000.", FormHashes},
		{"#### 18</s>", "18", FormHashes},
		{`\boxed{5} wins over #### 6`, "5", FormBoxed},
		{"The answer is 12.", "12.", FormPhrase},
		{"the final ANSWER: -3 apples", "-3", FormPhrase},
		{"Answer is 1 or maybe... The answer is 2 eggs", "2", FormPhrase},
		{"16-3-4=9 so 9*2 = 18 dollars", "18", FormLastNumber},
		{"it drops to -5 degrees", "-5", FormLastNumber},
		{"x-5", "5", FormLastNumber},
		{"cost was 1,234.50 in total", "1,234.50", FormLastNumber},
		{"3/4 of a cup", "3/4", FormLastNumber},
		{"no numbers here", "", FormNone},
		{"", "", FormNone},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			got, form := ExtractAnswer(c.text)
			if got != c.want || form != c.form {
				t.Errorf("ExtractAnswer(%q) = %q, %s; want %q, %s", c.text, got, form, c.want, c.form)
			}
		})
	}
}

func TestNormalizeAnswer(t *testing.T) {
	cases := map[string]string{
		"$1,234":              "1234",
		"1,234,567.5":         "1234567.5",
		"3,5":                 "3,5",
		`\$18.`:               "18",
		"50\\%":               "50",
		`\dfrac{3}{4}`:        "3/4",
		`\frac12`:             "1/2",
		`\frac{x+1}{2}`:       "(x+1)/2",
		`\text{ Yes }`:        "yes",
		`90^\circ`:            "90",
		"−7":                  "-7",
		`\left( 1, 2 \right)`: "(1,2)",
	}
	for in, want := range cases {
		if got := NormalizeAnswer(in); got != want {
			t.Errorf("NormalizeAnswer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAnswersEqual(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"18", "18", true},
		{"18.0", "18", true},
		{"18.00", "18", true},
		{"$18", "18", true},
		{"18 dollars", "18", true},
		{"70,000", "70000", true},
		{"1/2", "0.5", true},
		{`\frac{1}{2}`, "0.5", true},
		{`\frac{36}{2}`, "18", true},
		{"-4", "-4", true},
		{"−4", "-4", true},
		{"50%", "50", true},
		{"+3", "3", true},
		{"4", "-4", false},
		{"18.5", "18", false},
		{"180", "18", false},
		{"1/0", "0", false},
		{"", "", false},
		{"x+1", "x+1", true},
		{"x+1", "x+2", false},
		{"Yes", "yes", true},
	}
	for _, c := range cases {
		if got := AnswersEqual(c.a, c.b); got != c.want {
			t.Errorf("AnswersEqual(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestLabelAnswer(t *testing.T) {
	cases := map[string]string{
		"step\n#### 1,600":       "1,600",
		`so \boxed{\frac{2}{3}}`: `\frac{2}{3}`,
		"  42 ":                  "42",
	}
	for in, want := range cases {
		if got := LabelAnswer(in); got != want {
			t.Errorf("LabelAnswer(%q) = %q, want %q", in, got, want)
		}
	}
}

// gsm8kRecord is one line of testdata/gsm8k_test_sample.jsonl.
type gsm8kRecord struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

func readGSM8K(t testing.TB) []gsm8kRecord {
	t.Helper()
	f, err := os.Open("testdata/gsm8k_test_sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []gsm8kRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r gsm8kRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("gsm8k_test_sample.jsonl:%d: %v", line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) < 50 {
		t.Fatalf("%d GSM8K records, want ≥ 50", len(recs))
	}
	return recs
}

// finalAnswer splits a GSM8K answer into the solution and the final number.
func finalAnswer(t *testing.T, answer string) (solution, final string) {
	t.Helper()
	i := strings.LastIndex(answer, "####")
	if i < 0 {
		t.Fatalf("no #### in %q", answer)
	}
	return answer[:i], strings.TrimSpace(answer[i+4:])
}

// TestRuleSource_GSM8K grades real GSM8K reference solutions against their
// own labels (full answer text, and the bare final number) and perturbed
// solutions whose final answer is wrong.
func TestRuleSource_GSM8K(t *testing.T) {
	recs := readGSM8K(t)
	math, err := NewRule(RuleConfig{Kind: RuleMath})
	if err != nil {
		t.Fatal(err)
	}
	format, err := NewRule(RuleConfig{Kind: RuleFormat})
	if err != nil {
		t.Fatal(err)
	}
	var right, wrong []Sample
	for _, r := range recs {
		sol, final := finalAnswer(t, r.Answer)
		n, ok := new(big.Rat).SetString(strings.ReplaceAll(final, ",", ""))
		if !ok {
			t.Fatalf("final answer %q is not a number", final)
		}
		plus1 := new(big.Rat).Add(n, big.NewRat(1, 1)).RatString()
		times10 := new(big.Rat).Mul(n, big.NewRat(10, 1)).RatString()
		neg := new(big.Rat).Neg(n).RatString()
		for _, label := range []string{r.Answer, final} {
			right = append(right,
				Sample{Prompt: r.Question, Response: r.Answer, Label: label},
				Sample{Response: sol + `The answer is \boxed{` + final + `}.`, Label: label},
				Sample{Response: sol + "The answer is $" + final + ".", Label: label},
				Sample{Response: sol + "#### " + n.RatString() + ".0", Label: label},
			)
			wrong = append(wrong,
				Sample{Response: sol + "#### " + plus1, Label: label},
				Sample{Response: sol + "#### " + times10, Label: label},
				Sample{Response: sol + `\boxed{` + plus1 + `}`, Label: label},
				Sample{Response: sol + "The answer is " + plus1 + ".", Label: label},
				Sample{Response: "I don't know.", Label: label},
			)
			if n.Sign() != 0 {
				wrong = append(wrong, Sample{Response: sol + "#### " + neg, Label: label})
			}
		}
	}
	check := func(name string, src *RuleSource, samples []Sample, want float64) {
		t.Run(name, func(t *testing.T) {
			rs, err := src.Score(context.Background(), samples)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i, r := range rs {
				if r.Reward != want || r.Score != want {
					bad++
					if bad <= 5 {
						s := samples[i]
						t.Errorf("reward %g, want %g: label %q, response …%q", r.Reward, want, LabelAnswer(s.Label), tail(s.Response, 60))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d samples wrong", bad, len(samples))
			}
		})
	}
	check("references score 1", math, right, 1)
	check("perturbed score 0", math, wrong, 0)
	check("references are well formatted", format, right, 1)
	t.Logf("%d records: %d correct and %d perturbed samples", len(recs), len(right), len(wrong))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestExtractAnswer_GSM8KLastNumber: with the "#### N" line removed, the
// last-number fallback still finds the answer in most real solutions (the
// last calculation usually gives it); this pins the fallback's behaviour
// on real text rather than asserting it is always right.
func TestExtractAnswer_GSM8KLastNumber(t *testing.T) {
	recs := readGSM8K(t)
	hits := 0
	for _, r := range recs {
		sol, final := finalAnswer(t, r.Answer)
		got, form := ExtractAnswer(sol)
		if form != FormLastNumber {
			t.Fatalf("form %s for a solution without ####: %q", form, tail(sol, 80))
		}
		if AnswersEqual(got, final) {
			hits++
		}
	}
	frac := float64(hits) / float64(len(recs))
	t.Logf("last-number fallback right on %d of %d solutions (%.0f%%)", hits, len(recs), 100*frac)
	if frac < 0.8 {
		t.Errorf("last-number fallback right on only %s of solutions", fmt.Sprintf("%.0f%%", 100*frac))
	}
}
