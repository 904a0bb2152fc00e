package rmodel

import (
	"context"
	"math"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// TestServer serves a real reward-model folder (saved with
// load.Save, loaded back) over loopback HTTP, queries it with reward.Remote,
// alone and from many concurrent clients, and compares with scoring the
// same samples directly.
func TestServer(t *testing.T) {
	dir := saveTinyRM(t)
	src, _ := loadTinyRM(t, dir, func(c *Config) { c.Normalize = true })
	cfg := reward.DefaultServerConfig()
	cfg.APIKey, cfg.BatchSize, cfg.Window = "k3y", 64, 50*time.Millisecond
	srv, err := reward.NewServer(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	rc := reward.DefaultRemoteConfig()
	rc.URLs, rc.Timeout, rc.Attempts = []string{hs.URL + reward.DefaultPath}, 5*time.Second, 3
	rc.APIKey = "k3y"
	remote, err := reward.NewRemote(rc)
	if err != nil {
		t.Fatal(err)
	}
	textOnly := make([]grade.Sample, 0, len(storySamples))
	for _, s := range storySamples {
		if s.Tokens == nil { // the protocol carries text, not ids
			textOnly = append(textOnly, s)
		}
	}
	want, err := src.Score(context.Background(), textOnly)
	if err != nil {
		t.Fatal(err)
	}
	same := func(t *testing.T, got []grade.Result, want []grade.Result) {
		t.Helper()
		for i := range want {
			if math.Abs(got[i].Reward-want[i].Reward) > 1e-5*max(1, math.Abs(want[i].Reward)) || got[i].Score != got[i].Reward {
				t.Errorf("sample %d: served %+v, direct %+v", i, got[i], want[i])
			}
		}
	}
	got, err := remote.Score(context.Background(), textOnly)
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, want)
	t.Logf("rewards %v", grade.Rewards(got))

	const clients = 8
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := c % len(textOnly)
			rs, err := remote.Score(context.Background(), textOnly[i:i+1])
			if err == nil {
				same(t, rs, want[i:i+1])
			}
			errs[c] = err
		}()
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", c, err)
		}
	}
	reqs, batches, samples := srv.Stats()
	t.Logf("%d requests, %d batches, %d samples", reqs, batches, samples)
	if reqs != 1+clients || batches >= reqs || samples != int64(len(textOnly)+clients) {
		t.Errorf("%d requests in %d batches (%d samples): concurrent requests were not batched", reqs, batches, samples)
	}
}
