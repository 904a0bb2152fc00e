package placement

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/role/remote"
	"github.com/gorlhf/gorlhf/internal/transfer"
)

// actorWeights returns the stories260K actor's parameters as version v.
func actorWeights(t *testing.T, v int64) role.Weights {
	t.Helper()
	r, err := build(inproc.Want{Actor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := r.Actor.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.Version = v
	return w
}

// newTestPlane is newPlane closed at the end of the test.
func newTestPlane(t *testing.T, secret, listen string) *plane {
	t.Helper()
	p, err := newPlane(secret, listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestPlane_RoundTrip publishes the actor's weights on one plane and
// fetches them with another: same names, shapes, version and bits.
func TestPlane_RoundTrip(t *testing.T) {
	ctx := context.Background()
	pub := newTestPlane(t, testSecret, "127.0.0.1:0")
	recv := newTestPlane(t, testSecret, "")
	w := actorWeights(t, 3)
	// A NaN and a negative zero must survive as bits, not as values.
	w.Params[0].Data[0], w.Params[0].Data[1] = float32(math.NaN()), float32(math.Copysign(0, -1))

	ref, err := pub.Publish(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Version != 3 || ref.Size <= 0 || ref.Checksum == "" || !strings.HasPrefix(ref.URL, "http://127.0.0.1:") {
		t.Fatalf("reference %+v", ref)
	}
	got, err := recv.Fetch(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 {
		t.Fatalf("fetched version %d, want 3", got.Version)
	}
	sameParamsByName(t, "fetched", got.Params, w.Params)

	// The publisher's own client reads the same.
	again, err := pub.Fetch(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sameParamsByName(t, "fetched by the publisher", again.Params, w.Params)

	// A newer version replaces the snapshot; the old reference is refused.
	w.Version = 4
	ref4, err := pub.Publish(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recv.Fetch(ctx, ref); !errors.Is(err, transfer.ErrVersion) {
		t.Fatalf("fetch of the replaced version 3: %v, want %v", err, transfer.ErrVersion)
	}
	if got, err := recv.Fetch(ctx, ref4); err != nil || got.Version != 4 {
		t.Fatalf("fetch of version 4: version %d, %v", got.Version, err)
	}
}

// TestPlane_RefusesMismatchedReference changes the size or the checksum
// a reference announces: the receiver gets an error naming both, and no
// weights.
func TestPlane_RefusesMismatchedReference(t *testing.T) {
	ctx := context.Background()
	pub := newTestPlane(t, testSecret, "127.0.0.1:0")
	recv := newTestPlane(t, testSecret, "")
	ref, err := pub.Publish(ctx, actorWeights(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*remote.WeightsRef)
	}{
		{"size", func(r *remote.WeightsRef) { r.Size++ }},
		{"checksum", func(r *remote.WeightsRef) { r.Checksum = flipLast(r.Checksum) }},
		{"both", func(r *remote.WeightsRef) { r.Size, r.Checksum = 10, "sha256:00" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := ref
			c.edit(&bad)
			w, err := recv.Fetch(ctx, bad)
			if err == nil {
				t.Fatal("a reference that disagrees with the publisher was accepted")
			}
			if w.Params != nil || w.Version != 0 {
				t.Fatalf("refused fetch returned weights: version %d, %d params", w.Version, len(w.Params))
			}
			for _, want := range []string{bad.Checksum, ref.Checksum, "the reference says"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not name %q", err, want)
				}
			}
		})
	}
	// The unchanged reference still works.
	if _, err := recv.Fetch(ctx, ref); err != nil {
		t.Fatal(err)
	}
}

// TestPlane_Secrets: a receiver with another secret is refused by the
// publisher; a secret under 16 characters makes no plane; a plane that
// only fetches cannot publish.
func TestPlane_Secrets(t *testing.T) {
	ctx := context.Background()
	pub := newTestPlane(t, testSecret, "127.0.0.1:0")
	w := actorWeights(t, 1)
	ref, err := pub.Publish(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	other := newTestPlane(t, "another-secret-0123456789", "")
	got, err := other.Fetch(ctx, ref)
	if !errors.Is(err, transfer.ErrUnauthorized) || got.Params != nil {
		t.Fatalf("fetch with a wrong secret: %d params, %v; want %v", len(got.Params), err, transfer.ErrUnauthorized)
	}
	for _, s := range []string{"", "short-secret"} {
		if p, err := newPlane(s, ""); err == nil {
			p.Close()
			t.Fatalf("newPlane accepted the secret %q", s)
		}
		if p, err := newPlane(s, "127.0.0.1:0"); err == nil {
			p.Close()
			t.Fatalf("newPlane (publishing) accepted the secret %q", s)
		}
	}
	if _, err := newTestPlane(t, testSecret, "").Publish(ctx, w); err == nil {
		t.Fatal("a fetch-only plane published")
	}
	if _, err := newPlane(testSecret, "127.0.0.1:no-port"); err == nil {
		t.Fatal("newPlane listened on a bad address")
	}
}

// flipLast changes the last character of s.
func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == '0' {
		b[len(b)-1] = '1'
	} else {
		b[len(b)-1] = '0'
	}
	return string(b)
}

// sameParamsByName fails unless got and want hold the same names with the
// same shapes and bits (the plane returns them sorted by name).
func sameParamsByName(t *testing.T, what string, got, want []role.Param) {
	t.Helper()
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("%s: %d parameters, want %d", what, len(got), len(want))
	}
	byName := map[string]role.Param{}
	for _, p := range got {
		byName[p.Name] = p
	}
	for _, p := range want {
		g, ok := byName[p.Name]
		if !ok {
			t.Fatalf("%s: %s missing", what, p.Name)
		}
		if !slices.Equal(g.Shape, p.Shape) || len(g.Data) != len(p.Data) {
			t.Fatalf("%s: %s has shape %v (%d values), want %v (%d)", what, p.Name, g.Shape, len(g.Data), p.Shape, len(p.Data))
		}
		for i := range p.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(p.Data[i]) {
				t.Fatalf("%s: %s[%d] = %v, want %v", what, p.Name, i, g.Data[i], p.Data[i])
			}
		}
	}
}
