package cfgflag

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

type pair struct{ Lo, Hi float64 }

type optimConfig struct {
	LR   float64 `flag:"adam.lr"`
	Eps  float64 `flag:"adam.eps"`
	Beta float64 // set by a flag bound with Under
}

type roleConfig struct {
	Model string `flag:"model_name_or_path"`
	Optim optimConfig
}

type mode string

func (m *mode) String() string { return string(*m) }
func (m *mode) Set(s string) error {
	if s != "a" && s != "b" {
		return fmt.Errorf("bad mode %q", s)
	}
	*m = mode(s)
	return nil
}

type testConfig struct {
	Actor  roleConfig `flag:"actor"`
	Critic roleConfig `flag:"critic"`
	Steps  int        `flag:"train.steps"`
	Seed   uint64     `flag:"train.seed"`
	Quiet  bool       `flag:"quiet"`
	Mode   mode       `flag:"mode"`
	Range  pair       `flag:"range"` // no tagged fields: a leaf
	Notes  string     // untagged: not a flag
	hidden int        `flag:"hidden"`
}

func TestName(t *testing.T) {
	var c testConfig
	for _, tc := range []struct {
		field any
		want  string
	}{
		{&c.Actor.Model, "actor.model_name_or_path"},
		{&c.Critic.Model, "critic.model_name_or_path"},
		{&c.Actor.Optim.LR, "actor.adam.lr"},
		{&c.Critic.Optim.Eps, "critic.adam.eps"},
		{&c.Steps, "train.steps"},
		{&c.Range, "range"},
		{&c.Mode, "mode"},
	} {
		if got := Name(&c, tc.field); got != tc.want {
			t.Errorf("Name(%T) = %q, want %q", tc.field, got, tc.want)
		}
	}
	if got := Flag(&c, &c.Steps); got != "--train.steps" {
		t.Errorf("Flag = %q", got)
	}
	// Relative to a nested type, names have no prefix of the parents.
	if got := Name(&c.Actor, &c.Actor.Optim.LR); got != "adam.lr" {
		t.Errorf("Name relative to roleConfig = %q", got)
	}
	for _, tc := range []struct {
		group any
		want  string
	}{{&c, ""}, {&c.Actor, "actor"}, {&c.Critic.Optim, "critic"}} {
		if got := Prefix(&c, tc.group); got != tc.want {
			t.Errorf("Prefix(%T) = %q, want %q", tc.group, got, tc.want)
		}
	}
}

func TestName_ProgrammerErrors(t *testing.T) {
	var c testConfig
	var other int
	for _, tc := range []struct {
		name  string
		field any
		want  string
	}{
		{"Untagged", &c.Notes, "field Notes (string) of the *cfgflag.testConfig has no flag tag"},
		{"UntaggedInsideGroup", &c.Actor.Optim.Beta, "field Beta (float64)"},
		{"NotAField", &other, "is not a field of"},
		{"Group", &c.Actor, "is a group, not a flag"},
		{"NotAPointer", c.Steps, "want a pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Fatalf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			Name(&c, tc.field)
		})
	}
}

func TestNames(t *testing.T) {
	want := []string{"actor.model_name_or_path", "actor.adam.lr", "actor.adam.eps", "critic.model_name_or_path",
		"critic.adam.lr", "critic.adam.eps", "train.steps", "train.seed", "quiet", "mode", "range"}
	if got := Names(&testConfig{}); !slices.Equal(got, want) {
		t.Fatalf("Names =\n%v\nwant\n%v", got, want)
	}
}

// TestBinder binds every field type, parses a command line, and checks
// defaults, values, Under and Unbound.
func TestBinder(t *testing.T) {
	c := testConfig{Steps: 7, Mode: "a", Actor: roleConfig{Model: "m0"}}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	b := NewBinder(fs, &c)
	b.Var(&c.Actor.Model, "actor model")
	b.Var(&c.Actor.Optim.LR, "actor lr")
	b.Var(&c.Steps, "steps")
	b.Var(&c.Seed, "seed")
	b.Var(&c.Quiet, "quiet")
	b.Var(&c.Mode, "mode")
	b.Value(&c.Range, pairValue{&c.Range}, "range")
	b.Under(&c.Actor.Optim, "adam.beta", betaValue{&c.Actor.Optim.Beta}, "beta")
	if fl := fs.Lookup("train.steps"); fl == nil || fl.DefValue != "7" || fl.Usage != "steps" {
		t.Fatalf("train.steps flag = %+v", fl)
	}
	err := fs.Parse([]string{"--actor.model_name_or_path", "m1", "--actor.adam.lr", "0.5", "--train.steps", "3",
		"--train.seed", "9", "--quiet", "--mode", "b", "--range", "1,2", "--actor.adam.beta", "0.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{Actor: roleConfig{Model: "m1", Optim: optimConfig{LR: 0.5, Beta: 0.9}}, Steps: 3, Seed: 9,
		Quiet: true, Mode: "b", Range: pair{1, 2}}
	if c != want {
		t.Fatalf("after parsing: %+v\nwant %+v", c, want)
	}
	if err := fs.Parse([]string{"--mode", "z"}); err == nil || !strings.Contains(err.Error(), `bad mode "z"`) {
		t.Fatalf("bad enum: %v", err)
	}
	wantUnbound := []string{"actor.adam.eps", "critic.model_name_or_path", "critic.adam.lr", "critic.adam.eps"}
	if got := b.Unbound(); !slices.Equal(got, wantUnbound) {
		t.Fatalf("Unbound = %v, want %v", got, wantUnbound)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "--range: no flag for a *cfgflag.pair") {
			t.Fatalf("Var of a pair: panic %v", r)
		}
	}()
	b.Var(&c.Range, "range")
}

type pairValue struct{ p *pair }

func (v pairValue) String() string {
	if v.p == nil {
		return ""
	}
	return fmt.Sprintf("%g,%g", v.p.Lo, v.p.Hi)
}

func (v pairValue) Set(s string) error {
	_, err := fmt.Sscanf(s, "%g,%g", &v.p.Lo, &v.p.Hi)
	return err
}

type betaValue struct{ b *float64 }

func (v betaValue) String() string {
	if v.b == nil {
		return ""
	}
	return fmt.Sprint(*v.b)
}

func (v betaValue) Set(s string) error {
	_, err := fmt.Sscanf(s, "%g", v.b)
	return err
}

func TestNonFinite(t *testing.T) {
	var c testConfig
	if got := NonFinite(&c); len(got) != 0 {
		t.Fatalf("zero config: %v", got)
	}
	c.Critic.Optim.LR, c.Range.Hi, c.Actor.Optim.Beta = math.NaN(), math.Inf(-1), math.NaN()
	// Beta is no flag: its NaN is not reported.
	if got, want := NonFinite(&c), []string{"critic.adam.lr", "range"}; !slices.Equal(got, want) {
		t.Errorf("NonFinite = %v, want %v", got, want)
	}
}
