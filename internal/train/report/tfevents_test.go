package report

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEventWriter_Golden writes the events of tools/trainers_tfevents.py
// with the same clock and compares the bytes with the file that
// independent implementation wrote.
func TestEventWriter_Golden(t *testing.T) {
	t0 := time.Unix(1700000000, 250_000_000)
	clock := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3500 * time.Millisecond)}
	now := func() time.Time { c := clock[0]; clock = clock[1:]; return c }
	w, err := NewEventWriter(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		step   int
		tags   []string
		values []float64
	}{
		{1, []string{"train/loss", "train/lr"}, []float64{2.5, 1e-4}},
		{2, []string{"train/loss"}, []float64{2.25}},
		{300, []string{"eval/acc", "eval/loss"}, []float64{0.75, math.NaN()}},
	}
	for _, s := range steps {
		if err := w.Scalars(s.step, s.tags, s.values); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "golden.tfevents"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("event file differs from the golden one:\n got %x\nwant %x", got, want)
	}
	recs, err := readRecords(got)
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

// readRecords splits TFRecord framing, checking both masked CRCs.
func readRecords(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, errors.New("truncated header")
		}
		n := binary.LittleEndian.Uint64(b[:8])
		if maskedCRC(b[:8]) != binary.LittleEndian.Uint32(b[8:12]) {
			return nil, errors.New("bad length CRC")
		}
		if uint64(len(b)-16) < n {
			return nil, errors.New("truncated record")
		}
		payload := b[12 : 12+n]
		if maskedCRC(payload) != binary.LittleEndian.Uint32(b[12+n:16+n]) {
			return nil, fmt.Errorf("bad data CRC in record %d", len(out))
		}
		out = append(out, payload)
		b = b[16+n:]
	}
	return out, nil
}

func TestReadRecords_DetectsCorruption(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "golden.tfevents"))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{3, 9, 30, len(want) - 2} {
		bad := bytes.Clone(want)
		bad[at] ^= 0x40
		if _, err := readRecords(bad); err == nil {
			t.Errorf("flipping a bit at byte %d went unnoticed", at)
		}
	}
	// The CRC-32C check value (RFC 3720) pins the polynomial.
	if c := crc32Castagnoli([]byte("123456789")); c != 0xe3069283 {
		t.Fatalf("crc32c check value %#x", c)
	}
}

func crc32Castagnoli(b []byte) uint32 {
	// Unmask: the masked CRC is rotr15(c) + k.
	m := maskedCRC(b) - 0xa282ead8
	return m<<15 | m>>17
}
