package collective

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout    = 5 * time.Minute  // bootstrap: every rank must have joined by then
	DefaultOpTimeout  = 10 * time.Minute // one collective (as torch.distributed's NCCL default)
	DefaultChunkBytes = 512 << 10        // pipelining unit of the ring
)

// Config sets up one rank of a TCP group (Connect).
type Config struct {
	// Rank is this process's index in [0, Size).
	Rank int
	// Size is the number of ranks; 1 needs no network at all.
	Size int
	// Addr is rank 0's rendezvous address, host:port: rank 0 listens on
	// it, every other rank dials it. Required when Size > 1, except on
	// rank 0 when Listener is set.
	Addr string
	// Listener, on rank 0 only, is an already open rendezvous listener
	// used instead of listening on Addr (tests listen on 127.0.0.1:0).
	// Connect closes it when the bootstrap ends. Nil: listen on Addr.
	Listener net.Listener
	// Listen is the address this rank's data listener binds, host:port.
	// "" means port 0 on the interface that reaches rank 0 (on rank 0:
	// Addr's host), so that ranks on one host stay on loopback.
	Listen string
	// Secret is the run's shared secret. Ranks prove they know it in
	// every handshake (HMAC-SHA256 over fresh nonces, compared in
	// constant time); it never crosses the network. Required when
	// Size > 1.
	Secret string
	// Timeout bounds the whole bootstrap (rendezvous, ring links, first
	// barrier); 0 means DefaultTimeout.
	Timeout time.Duration
	// OpTimeout bounds each collective; a rank that waits longer fails
	// the collective and the group. 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// ChunkBytes is the pipelining unit: each shard moves in chunks of
	// this many bytes, so that a rank adds one chunk while the next is on
	// the wire. Every rank must use the same value (the handshake of each
	// collective checks it). 0 means DefaultChunkBytes; at least 64 and a
	// multiple of 8.
	ChunkBytes int
}

// withDefaults fills the zero durations and the chunk size.
func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	return c
}

// Validate checks the configuration (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Size < 1 {
		errs = append(errs, fmt.Errorf("collective: config: size %d, want ≥ 1", c.Size))
	}
	if c.Rank < 0 || c.Rank >= max(c.Size, 1) {
		errs = append(errs, fmt.Errorf("collective: config: rank %d out of range [0, %d)", c.Rank, c.Size))
	}
	if c.Size > 1 {
		if c.Addr == "" && (c.Rank != 0 || c.Listener == nil) {
			errs = append(errs, fmt.Errorf("collective: config: rank %d: no rendezvous address (rank 0's host:port)", c.Rank))
		}
		if c.Secret == "" {
			errs = append(errs, errors.New("collective: config: empty run secret"))
		}
	}
	if c.Listener != nil && c.Rank != 0 {
		errs = append(errs, fmt.Errorf("collective: config: rank %d has a rendezvous listener; only rank 0 listens", c.Rank))
	}
	if c.Timeout < 0 || c.OpTimeout < 0 {
		errs = append(errs, fmt.Errorf("collective: config: negative timeout (%v, op %v)", c.Timeout, c.OpTimeout))
	}
	if c.ChunkBytes != 0 && (c.ChunkBytes < 64 || c.ChunkBytes%8 != 0) {
		errs = append(errs, fmt.Errorf("collective: config: chunk of %d bytes, want ≥ 64 and a multiple of 8", c.ChunkBytes))
	}
	return errors.Join(errs...)
}
