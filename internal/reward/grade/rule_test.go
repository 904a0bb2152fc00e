package grade

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestRule_Set(t *testing.T) {
	var r Rule
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&r, "rule", "")
	if err := fs.Parse([]string{"--rule", "format"}); err != nil || r != RuleFormat {
		t.Fatalf("parse: %v, rule %q", err, r)
	}
	err := r.Set("gsm8k")
	if err == nil || !strings.Contains(err.Error(), "math, exact, regex, length, format") {
		t.Errorf("Set(gsm8k) error %v, want the list of rules", err)
	}
	var u LengthUnit
	if err := u.Set("tokens"); err != nil || u != UnitTokens {
		t.Errorf("unit %q, %v", u, err)
	}
	if err := u.Set("bytes"); err == nil {
		t.Error("Set(bytes) succeeded")
	}
}

func TestRuleConfig_Validate(t *testing.T) {
	cases := []struct {
		name string
		cfg  RuleConfig
		want string // error substring; "" = valid
	}{
		{"default", DefaultRuleConfig(), ""},
		{"unknown", RuleConfig{Kind: "bleu"}, "unknown rule"},
		{"bad regex", RuleConfig{Kind: RuleRegex, Pattern: "a("}, "regex pattern"},
		{"zero target", RuleConfig{Kind: RuleLength, Length: LengthConfig{Unit: UnitChars}}, "target 0"},
		{"no unit", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 3}}, "length unit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate() = %v, want %q", err, c.want)
			}
			if _, nerr := NewRule(c.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("NewRule error %v, Validate %v", nerr, err)
			}
		})
	}
}

func TestRuleSource_Score(t *testing.T) {
	cases := []struct {
		name string
		cfg  RuleConfig
		s    Sample
		want float64
	}{
		{"exact hit", RuleConfig{Kind: RuleExact}, Sample{Response: " 12\n", Label: "12"}, 1},
		{"exact miss", RuleConfig{Kind: RuleExact}, Sample{Response: "12.0", Label: "12"}, 0},
		{"exact case", RuleConfig{Kind: RuleExact}, Sample{Response: "Paris", Label: "paris"}, 0},
		{"exact fold", RuleConfig{Kind: RuleExact, FoldCase: true}, Sample{Response: "Paris", Label: "paris"}, 1},
		{"regex pattern", RuleConfig{Kind: RuleRegex, Pattern: `^\d+$`}, Sample{Response: "123"}, 1},
		{"regex pattern miss", RuleConfig{Kind: RuleRegex, Pattern: `^\d+$`}, Sample{Response: "12a"}, 0},
		{"regex from label", RuleConfig{Kind: RuleRegex}, Sample{Response: "the cat sat", Label: `c.t`}, 1},
		{"regex from label miss", RuleConfig{Kind: RuleRegex}, Sample{Response: "the dog sat", Label: `c.t`}, 0},
		{"length at target", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 4, Unit: UnitChars}}, Sample{Response: "abcd"}, 1},
		{"length runes", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 4, Unit: UnitChars}}, Sample{Response: "éé"}, 0.5},
		{"length over", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 2, Unit: UnitWords}}, Sample{Response: "a b c"}, 0.5},
		{"length far over", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 2, Unit: UnitWords}}, Sample{Response: "a b c d e f"}, 0},
		{"length tokens", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 10, Unit: UnitTokens}}, Sample{Response: "x", ResponseTokens: 8}, 0.8},
		{"format hashes", RuleConfig{Kind: RuleFormat}, Sample{Response: "so\n#### 5"}, 1},
		{"format boxed", RuleConfig{Kind: RuleFormat}, Sample{Response: `\boxed{5}`}, 1},
		{"format bare number", RuleConfig{Kind: RuleFormat}, Sample{Response: "it is 5"}, 0},
		{"format pattern", RuleConfig{Kind: RuleFormat, Pattern: `<answer>.+</answer>\s*$`}, Sample{Response: "think <answer>5</answer>"}, 1},
		{"format pattern miss", RuleConfig{Kind: RuleFormat, Pattern: `<answer>.+</answer>\s*$`}, Sample{Response: "#### 5"}, 0},
		{"math", RuleConfig{Kind: RuleMath}, Sample{Response: `\boxed{-2.50}`, Label: "-5/2"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRule(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := r.Score(context.Background(), []Sample{c.s})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Reward != c.want || rs[0].Score != c.want {
				t.Errorf("results %+v, want reward %g", rs, c.want)
			}
		})
	}
}

func TestRuleSource_ScoreErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  RuleConfig
		s    Sample
		want string
	}{
		{"math without label", RuleConfig{Kind: RuleMath}, Sample{Response: "5"}, "needs a label"},
		{"bad label regex", RuleConfig{Kind: RuleRegex}, Sample{Response: "x", Label: "(("}, "not a regular expression"},
		{"tokens unknown", RuleConfig{Kind: RuleLength, Length: LengthConfig{Target: 3, Unit: UnitTokens}}, Sample{Response: "abc"}, "ResponseTokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRule(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := r.Score(context.Background(), []Sample{{Response: "ok", Label: "ok", ResponseTokens: 1}, c.s})
			if err == nil || rs != nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sample 1") {
				t.Errorf("results %v, error %v; want no results and an error naming sample 1 and %q", rs, err, c.want)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, _ := NewRule(RuleConfig{Kind: RuleExact})
		if _, err := r.Score(ctx, []Sample{{}}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}
