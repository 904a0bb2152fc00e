package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestBoard: a Lookup posted before waits for the Post (the group's first
// rank may start last), a value set twice alike is fine, another value
// or another secret is refused, and a key nobody posts times out naming
// it.
func TestBoard(t *testing.T) {
	_, addr, _ := driver(t, baseConfig(1, 2))
	jc := JoinConfig{Driver: addr, Secret: "s3cret", Timeout: 5 * time.Second}
	ctx := context.Background()
	got := make(chan string, 1)
	go func() {
		v, err := Lookup(ctx, jc, "collective/actor")
		if err != nil {
			v = err.Error()
		}
		got <- v
	}()
	time.Sleep(150 * time.Millisecond)
	if err := Post(ctx, jc, "collective/actor", "10.0.0.7:4242"); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "10.0.0.7:4242" {
		t.Fatalf("Lookup = %q", v)
	}
	if err := Post(ctx, jc, "collective/actor", "10.0.0.7:4242"); err != nil {
		t.Fatalf("the same value again: %v", err)
	}
	if err := Post(ctx, jc, "collective/actor", "10.0.0.8:1"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "set already") {
		t.Fatalf("another value: %v", err)
	}
	bad := jc
	bad.Secret = "wrong"
	if _, err := Lookup(ctx, bad, "collective/actor"); !errors.Is(err, ErrRefused) {
		t.Fatalf("wrong secret: %v", err)
	}
	short := jc
	short.Timeout = 300 * time.Millisecond
	if _, err := Lookup(ctx, short, "collective/critic"); err == nil || !strings.Contains(err.Error(), `"collective/critic"`) || !strings.Contains(err.Error(), "not set yet") {
		t.Fatalf("a key never posted: %v", err)
	}
}
