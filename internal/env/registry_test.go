package env

import (
	"context"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	f, err := Open("arithmetic", "steps=2, max=5,seed=11")
	if err != nil {
		t.Fatal(err)
	}
	a, b := f(), f()
	if a == b {
		t.Fatal("the factory returned the same instance twice")
	}
	ep, err := Run(context.Background(), a, "", "", oracle, DefaultRunConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Turns) != 2 || !ep.Done || ep.Return != 1 {
		t.Fatalf("steps=2 episode: %d turns, done %v, return %g", len(ep.Turns), ep.Done, ep.Return)
	}
	// seed=11 is used when the label is not a number
	want, _ := newArith(t, ArithmeticConfig{Steps: 2, Max: 5, Seed: 11}).Reset(context.Background(), "", "")
	if !strings.HasPrefix(ep.Transcript, want) {
		t.Fatalf("transcript %q does not start with the seed-11 question %q", ep.Transcript, want)
	}
	if _, err := Open("arithmetic", ""); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct{ name, args, want string }{
		{"chess", "", `unknown environment "chess"`},
		{"arithmetic", "steps", `"steps" is not key=value`},
		{"arithmetic", "depth=3", `unknown argument "depth"`},
		{"arithmetic", "steps=x", `steps="x": not an integer`},
		{"arithmetic", "steps=0", "steps 0 must be ≥ 1"},
		{"arithmetic", "max=2,max=3", `"max" given twice`},
	} {
		_, err := Open(c.name, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q, %q) = %v, want an error containing %q", c.name, c.args, err, c.want)
		}
	}
	if n := Names(); len(n) != 3 || !strings.HasPrefix(n[0], "arithmetic: ") || !strings.HasPrefix(n[1], "chain: ") || !strings.HasPrefix(n[2], "remote: ") {
		t.Fatalf("Names() = %v", n)
	}
}

func TestArithmetic_ObservationSeparatesPrompt(t *testing.T) {
	a := newArith(t, DefaultArithmeticConfig())
	for prompt, wantPrefix := range map[string]string{"": "Q1: ", "Solve.": "Solve.\nQ1: ", "Solve.\n": "Solve.\nQ1: "} {
		obs, err := a.Reset(context.Background(), prompt, "")
		if err != nil || !strings.HasPrefix(obs, wantPrefix) {
			t.Errorf("Reset(%q) = %q, %v; want the prefix %q", prompt, obs, err, wantPrefix)
		}
	}
}
