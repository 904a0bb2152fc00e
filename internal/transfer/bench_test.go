package transfer

import (
	"context"
	"testing"
)

// BenchmarkReceiverFetch measures one in-place fetch of stories260K over
// loopback HTTP: go test -run '^$' -bench ReceiverFetch ./internal/transfer/
func BenchmarkReceiverFetch(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Token = "0123456789abcdef0123"
	cfg.ShmDir = ""
	p, err := NewPublisher(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	src := benchStories(b)
	m, err := p.Publish(context.Background(), "actor", Weights{Version: 1, Params: src})
	if err != nil {
		b.Fatal(err)
	}
	base := serveB(b, p)
	c, err := NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	r, err := NewReceiver(c, zeroLike(src), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(m.Size)
	for b.Loop() {
		if _, err := r.Fetch(context.Background(), URL(base, "actor"), 1); err != nil {
			b.Fatal(err)
		}
	}
}
