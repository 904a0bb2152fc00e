package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestBenchCollective runs a small benchmark with real rank processes
// (this test binary as gorlhf) and checks the table and the JSON.
func TestBenchCollective(t *testing.T) {
	useTestBinary(t)
	if err := run(context.Background(), []string{"bench", "collective", "--help"}, io.Discard); err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	cfg := collectiveBenchConfig{Ranks: []int{2, 3}, Sizes: []int64{64 << 10, 256 << 10}, Reps: 1, ChunkBytes: 16 << 10}
	var out bytes.Buffer
	if err := reportBenchCollective(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"busbw GB/s", "  64 KiB      2", "  64 KiB      3", " 256 KiB      3", "ring with 16 KiB chunks"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
	cfg.JSON, cfg.Sizes = true, []int64{4 << 10}
	out.Reset()
	if err := reportBenchCollective(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []collectiveBenchRow `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(got.Results) != 2 {
		t.Fatalf("%d rows, want 2: %s", len(got.Results), out.String())
	}
	for _, r := range got.Results {
		n := float64(r.Ranks)
		if r.TimeS <= 0 || r.CopyBW <= 0 || r.Bytes != 4<<10 || len(r.RoundsS) != 1 || r.BusBW < 0.99*r.AlgBW*2*(n-1)/n || r.BusBW > 1.01*r.AlgBW*2*(n-1)/n {
			t.Fatalf("row %+v", r)
		}
	}
	for _, bad := range [][]string{{"--ranks", "1"}, {"--reps", "0"}, {"--min", "3"}, {"--min", "4M", "--max", "1M"}, {"--chunk-bytes", "100"}, {"--factor", "1"}} {
		if err := run(context.Background(), append([]string{"bench", "collective"}, bad...), io.Discard); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

func TestPayloadSizes(t *testing.T) {
	got, err := payloadSizes("1M", "256M", 4)
	if err != nil || len(got) != 5 || got[0] != 1<<20 || got[4] != 256<<20 {
		t.Fatalf("payloadSizes(1M, 256M, 4) = %v, %v", got, err)
	}
	if got, _ := payloadSizes("64K", "64K", 2); len(got) != 1 || got[0] != 64<<10 {
		t.Fatalf("one size: %v", got)
	}
}
