package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestBenchTransfer runs one round on stories260K through real loopback
// servers and checks that every path is reported.
func TestBenchTransfer(t *testing.T) {
	if err := run(context.Background(), []string{"bench", "transfer", "--help"}, io.Discard); err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	var out bytes.Buffer
	if err := benchTransfer(context.Background(), transferBenchConfig{Reps: 1}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stories260K: 260032 params", "plain TCP copy", "HTTP stream + CRC32C + decode", "publish", "checksum only: SHA-256"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"bench", "transfer", "--reps", "0"}, io.Discard); err == nil {
		t.Fatal("--reps 0 accepted")
	}
}
