package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
)

// Checksum algorithms.
const (
	// CRC32C (Castagnoli) runs on the CPU's CRC instruction at about
	// 10 GB/s, far above a loopback copy, and catches every burst error
	// up to 32 bits: it guards against truncation and corruption, not
	// against an attacker (the token and the network do that).
	CRC32C = "crc32c"
	// SHA256 is a cryptographic digest, about 6× slower here.
	SHA256 = "sha256"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// newHash returns a fresh hash for algo.
func newHash(algo string) (hash.Hash, error) {
	switch algo {
	case CRC32C:
		return crc32.New(castagnoli), nil
	case SHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("checksum %q is not %s or %s", algo, CRC32C, SHA256)
}

// formatSum writes a checksum header value, "crc32c=1a2b3c4d".
func formatSum(algo string, sum []byte) string { return algo + "=" + hex.EncodeToString(sum) }

// parseSum reads a checksum header value and returns its algorithm and
// digest.
func parseSum(s string) (string, []byte, error) {
	algo, digest, ok := strings.Cut(s, "=")
	if !ok {
		return "", nil, fmt.Errorf("checksum %q is not algorithm=hex", s)
	}
	h, err := newHash(algo)
	if err != nil {
		return "", nil, err
	}
	sum, err := hex.DecodeString(digest)
	if err != nil || len(sum) != h.Size() {
		return "", nil, fmt.Errorf("checksum %q: want %d hex-encoded bytes", s, h.Size())
	}
	return algo, sum, nil
}

// ErrCorrupt marks a payload whose length or checksum does not match its
// headers: truncated, padded or damaged bytes. Nothing was loaded.
var ErrCorrupt = errors.New("corrupt payload")

// verifier passes a payload through, counting and hashing every byte, and
// checks both against the headers at the end. It also stops on ctx.
type verifier struct {
	ctx  context.Context
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
	sum  []byte
}

// newVerifier checks r against size and the checksum header value sum.
func newVerifier(ctx context.Context, r io.Reader, size int64, sum string) (*verifier, error) {
	algo, digest, err := parseSum(sum)
	if err != nil {
		return nil, err
	}
	h, _ := newHash(algo)
	return &verifier{ctx: ctx, r: r, h: h, size: size, sum: digest}, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	if err := v.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.n > v.size {
		return n, fmt.Errorf("%w: more than the %d bytes announced", ErrCorrupt, v.size)
	}
	return n, err
}

// finish reads what is left (nothing, for a well-formed payload) and
// checks the byte count and the checksum.
func (v *verifier) finish() error {
	var one [1]byte
	for {
		n, err := v.Read(one[:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: bytes past the end of the safetensors data", ErrCorrupt)
		}
	}
	if v.n != v.size {
		return fmt.Errorf("%w: %d bytes received, %d announced", ErrCorrupt, v.n, v.size)
	}
	if got := v.h.Sum(nil); string(got) != string(v.sum) {
		return fmt.Errorf("%w: checksum %s, announced %x", ErrCorrupt, hexSum(got), v.sum)
	}
	return nil
}

func hexSum(b []byte) string { return hex.EncodeToString(b) }
