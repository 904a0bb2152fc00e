package grade

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Rule names a built-in grader (a flag.Value).
type Rule string

const (
	// RuleMath: 1 when the response's final answer (ExtractAnswer) equals
	// the label's (LabelAnswer) under AnswersEqual, else 0.
	RuleMath Rule = "math"
	// RuleExact: 1 when the trimmed response equals the trimmed label
	// (case-insensitively with RuleConfig.FoldCase), else 0.
	RuleExact Rule = "exact"
	// RuleRegex: 1 when the response matches RuleConfig.Pattern, or, with
	// no Pattern, the sample's label read as a regular expression.
	RuleRegex Rule = "regex"
	// RuleLength: a reward for response length, 1 at RuleConfig.Length.Target
	// falling linearly to 0 at 0 and at twice the target.
	RuleLength Rule = "length"
	// RuleFormat: 1 when the response states its answer in a required
	// form: RuleConfig.Pattern when set, else any explicit form ExtractAnswer
	// knows (\boxed{}, "#### N", "the answer is N"). Correctness is not
	// checked; mix it with RuleMath for that.
	RuleFormat Rule = "format"
)

var rules = []Rule{RuleMath, RuleExact, RuleRegex, RuleLength, RuleFormat}

// Rules lists the built-in graders.
func Rules() []Rule { return append([]Rule(nil), rules...) }

// String implements flag.Value.
func (r Rule) String() string { return string(r) }

// Set implements flag.Value.
func (r *Rule) Set(s string) error {
	for _, k := range rules {
		if string(k) == s {
			*r = k
			return nil
		}
	}
	names := make([]string, len(rules))
	for i, k := range rules {
		names[i] = string(k)
	}
	return fmt.Errorf("grade: unknown rule %q (want one of %s)", s, strings.Join(names, ", "))
}

// LengthUnit says what RuleLength counts.
type LengthUnit string

const (
	UnitChars  LengthUnit = "chars"  // Unicode code points of the response
	UnitWords  LengthUnit = "words"  // whitespace-separated words
	UnitTokens LengthUnit = "tokens" // Sample.ResponseTokens (must be set)
)

// String implements flag.Value.
func (u LengthUnit) String() string { return string(u) }

// Set implements flag.Value.
func (u *LengthUnit) Set(s string) error {
	switch LengthUnit(s) {
	case UnitChars, UnitWords, UnitTokens:
		*u = LengthUnit(s)
		return nil
	}
	return fmt.Errorf("grade: unknown length unit %q (want chars, words or tokens)", s)
}

// LengthConfig configures RuleLength.
type LengthConfig struct {
	Target int        `flag:"length_target"` // the length that earns 1
	Unit   LengthUnit `flag:"length_unit"`   // what is counted
}

// RuleConfig configures a rule grader.
type RuleConfig struct {
	Kind Rule `flag:"rule"`
	// Pattern is the regular expression (Go RE2 syntax) of RuleRegex and
	// RuleFormat; optional for both (see each rule).
	Pattern string `flag:"rule_pattern"`
	// FoldCase makes RuleExact case-insensitive.
	FoldCase bool `flag:"rule_fold_case"`
	// Length configures RuleLength.
	Length LengthConfig
}

// DefaultRuleConfig is the math grader.
func DefaultRuleConfig() RuleConfig {
	return RuleConfig{Kind: RuleMath, Length: LengthConfig{Target: 100, Unit: UnitChars}}
}

// Validate checks the configuration, compiling Pattern.
func (c RuleConfig) Validate() error {
	var k Rule
	if err := k.Set(string(c.Kind)); err != nil {
		return err
	}
	if c.Pattern != "" {
		if _, err := regexp.Compile(c.Pattern); err != nil {
			return fmt.Errorf("grade: %s pattern: %w", c.Kind, err)
		}
	}
	if c.Kind == RuleLength {
		if c.Length.Target <= 0 {
			return fmt.Errorf("grade: length target %d must be positive", c.Length.Target)
		}
		var u LengthUnit
		if err := u.Set(string(c.Length.Unit)); err != nil {
			return err
		}
	}
	return nil
}

// RuleSource is a built-in grader: a pure function of each sample, so it
// is safe for concurrent use and deterministic.
type RuleSource struct {
	cfg     RuleConfig
	pattern *regexp.Regexp
}

// NewRule returns the grader cfg describes.
func NewRule(cfg RuleConfig) (*RuleSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &RuleSource{cfg: cfg}
	if cfg.Pattern != "" {
		r.pattern = regexp.MustCompile(cfg.Pattern) // checked by Validate
	}
	return r, nil
}

// Config returns the grader's configuration.
func (r *RuleSource) Config() RuleConfig { return r.cfg }

// Score grades a batch (it implements reward.Source). Reward and Score
// are the same 0…1 value.
func (r *RuleSource) Score(ctx context.Context, samples []Sample) ([]Result, error) {
	out := make([]Result, len(samples))
	for i, s := range samples {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v, err := r.grade(s)
		if err != nil {
			return nil, fmt.Errorf("grade: %s grader: sample %d: %w", r.cfg.Kind, i, err)
		}
		out[i] = Result{Reward: v, Score: v}
	}
	return out, nil
}

// Grade scores one sample.
func (r *RuleSource) Grade(s Sample) (float64, error) { return r.grade(s) }

func (r *RuleSource) grade(s Sample) (float64, error) {
	switch r.cfg.Kind {
	case RuleMath:
		if strings.TrimSpace(s.Label) == "" {
			return 0, errors.New("math grader needs a label (set --data.label_key)")
		}
		ok, _, _ := MathCorrect(s.Response, s.Label)
		return boolReward(ok), nil
	case RuleExact:
		a, b := strings.TrimSpace(s.Response), strings.TrimSpace(s.Label)
		if r.cfg.FoldCase {
			return boolReward(strings.EqualFold(a, b)), nil
		}
		return boolReward(a == b), nil
	case RuleRegex:
		re := r.pattern
		if re == nil {
			var err error
			if re, err = regexp.Compile(s.Label); err != nil {
				return 0, fmt.Errorf("label %q is not a regular expression: %w", s.Label, err)
			}
		}
		return boolReward(re.MatchString(s.Response)), nil
	case RuleLength:
		n, err := r.length(s)
		if err != nil {
			return 0, err
		}
		t := float64(r.cfg.Length.Target)
		return max(0, 1-abs(float64(n)-t)/t), nil
	case RuleFormat:
		if r.pattern != nil {
			return boolReward(r.pattern.MatchString(s.Response)), nil
		}
		_, form := ExtractAnswer(s.Response)
		return boolReward(form.Explicit()), nil
	}
	panic("grade: unknown rule " + string(r.cfg.Kind)) // Validate rules this out
}

// length counts the response in the configured unit.
func (r *RuleSource) length(s Sample) (int, error) {
	switch r.cfg.Length.Unit {
	case UnitWords:
		return len(strings.Fields(s.Response)), nil
	case UnitTokens:
		if s.ResponseTokens <= 0 && s.Response != "" {
			return 0, errors.New("length in tokens needs Sample.ResponseTokens")
		}
		return s.ResponseTokens, nil
	}
	return utf8.RuneCountInString(s.Response), nil
}

func boolReward(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
