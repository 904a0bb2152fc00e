package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/nn"
)

// TestHTTP_RoundTrip publishes stories260K and random odd shapes and
// fetches them back over a loopback server, fresh and in place.
func TestHTTP_RoundTrip(t *testing.T) {
	for _, algo := range []string{CRC32C, SHA256} {
		for _, tc := range []struct {
			name string
			ps   nn.Params
		}{
			{"stories260K", stories(t)},
			{"odd shapes", randomParams(5)},
		} {
			t.Run(algo+"/"+tc.name, func(t *testing.T) {
				cfg := testConfig(t)
				cfg.Checksum = algo
				p, base := startPublisher(t, cfg)
				pub, err := p.Publish(context.Background(), "actor", Weights{Version: 1, Params: tc.ps})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(pub.Checksum, algo+"=") {
					t.Fatalf("checksum %q is not %s", pub.Checksum, algo)
				}
				c := newClient(t, cfg)
				w, m, err := c.Fetch(context.Background(), URL(base, "actor"), Latest)
				if err != nil {
					t.Fatal(err)
				}
				if m.Version != 1 || m.Via != "http" || m.Size != pub.Size || m.Checksum != pub.Checksum || w.Version != 1 {
					t.Fatalf("meta %+v, published %+v", m, pub)
				}
				sameBits(t, w.Params, tc.ps)

				dst := zeroLike(tc.ps)
				r, err := NewReceiver(c, dst, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Fetch(context.Background(), URL(base, "actor"), 1); err != nil {
					t.Fatal(err)
				}
				sameBits(t, dst, tc.ps)
				if r.Version() != 1 {
					t.Fatalf("receiver version %d", r.Version())
				}
				head, err := c.Head(context.Background(), URL(base, "actor"))
				if err != nil || head.Version != 1 || head.Size != pub.Size {
					t.Fatalf("head %+v, %v", head, err)
				}
			})
		}
	}
}

// tamper serves the publisher's answer after edit changes its headers and
// body: a real loopback server that lies.
func tamper(p *Publisher, edit func(h http.Header, body []byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		h := rec.Header().Clone()
		body := edit(h, rec.Body.Bytes())
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x10
	return out
}

func crcHeader(b []byte) string {
	h := crc32.New(castagnoli)
	h.Write(b)
	return formatSum(CRC32C, h.Sum(nil))
}

// TestFetch_Refused checks that every kind of bad answer is refused and the
// receiver's weights and version stay exactly as they were.
func TestFetch_Refused(t *testing.T) {
	cfg := testConfig(t)
	p, _ := startPublisher(t, cfg)
	good := randomParams(6)
	if _, err := p.Publish(context.Background(), "actor", Weights{Version: 3, Params: good}); err != nil {
		t.Fatal(err)
	}
	setLen := func(h http.Header, n int) {
		h.Set("Content-Length", strconv.Itoa(n))
		h.Set(HeaderLength, strconv.Itoa(n))
	}
	other, err := Marshal(2, randomParams(7)) // a valid payload of the wrong version
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(h http.Header, b []byte) []byte
		corrupt bool // must wrap ErrCorrupt
		want    string
	}{
		{"truncated body", func(h http.Header, b []byte) []byte { return b[:len(b)-100] }, true, "stream ended"},
		{"truncated, lengths agree", func(h http.Header, b []byte) []byte { setLen(h, len(b)-100); return b[:len(b)-100] }, false, "outside"},
		{"truncated, checksum recomputed", func(h http.Header, b []byte) []byte {
			b = b[:len(b)-4]
			setLen(h, len(b))
			h.Set(HeaderChecksum, crcHeader(b))
			return b
		}, false, "outside"},
		{"flipped data byte", func(h http.Header, b []byte) []byte { return flip(b, len(b)-3) }, true, "checksum"},
		{"flipped header byte", func(h http.Header, b []byte) []byte { return flip(b, 20) }, true, ""},
		{"wrong length header", func(h http.Header, b []byte) []byte { h.Set(HeaderLength, strconv.Itoa(len(b)+8)); return b }, true, "Content-Length"},
		{"longer, padded", func(h http.Header, b []byte) []byte {
			b = append(bytes.Clone(b), make([]byte, 8)...)
			setLen(h, len(b))
			h.Set(HeaderChecksum, crcHeader(b))
			return b
		}, false, "cover"},
		{"wrong checksum", func(h http.Header, b []byte) []byte { h.Set(HeaderChecksum, "crc32c=00000000"); return b }, true, "checksum"},
		{"unknown checksum", func(h http.Header, b []byte) []byte { h.Set(HeaderChecksum, "md5=00"); return b }, false, "md5"},
		{"no checksum", func(h http.Header, b []byte) []byte { h.Del(HeaderChecksum); return b }, false, "algorithm=hex"},
		{"version header differs from payload", func(h http.Header, b []byte) []byte { h.Set(HeaderVersion, "9"); return b }, true, "payload says version 3, headers 9"},
		{"bad version header", func(h http.Header, b []byte) []byte { h.Set(HeaderVersion, "x"); return b }, false, "not a non-negative integer"},
		{"older version", func(h http.Header, b []byte) []byte {
			h.Set(HeaderVersion, "2")
			setLen(h, len(other))
			h.Set(HeaderChecksum, crcHeader(other))
			return other
		}, false, "version 2 is older than the loaded version 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, tamper(p, tc.edit))
			dst := zeroLike(good)
			c := newClient(t, cfg)
			r, err := NewReceiver(c, dst, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Load version 3 directly from the honest publisher first.
			direct := serve(t, p)
			if _, err := r.Fetch(context.Background(), URL(direct, "actor"), Latest); err != nil {
				t.Fatal(err)
			}
			for _, p := range dst { // mark the live weights: nothing may overwrite them
				for i := range p.Tensor.Data {
					p.Tensor.Data[i] = -1
				}
			}
			marked := cloneParams(dst)
			_, err = r.Fetch(context.Background(), URL(base, "actor"), Latest)
			checkRefused(t, err, tc.corrupt, tc.want)
			sameBits(t, dst, marked)
			if r.Version() != 3 {
				t.Fatalf("version %d after a refused fetch, want 3", r.Version())
			}
			if _, _, err := c.Fetch(context.Background(), URL(base, "actor"), Latest); err == nil && tc.name != "older version" {
				t.Fatal("Client.Fetch accepted the bad answer")
			}
		})
	}
}

// checkRefused checks the error's kind and text; the URL must be named.
func checkRefused(t *testing.T, err error, corrupt bool, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("bad answer accepted")
	}
	if corrupt && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "/weights/actor") || !strings.HasPrefix(err.Error(), "transfer: fetch http://127.0.0.1:") {
		t.Fatalf("err = %v, want one naming the URL and containing %q", err, want)
	}
}

// TestFetch_Versions covers the version rules: publishes must increase, an
// exact version can be asked for, and a receiver never goes back.
func TestFetch_Versions(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	newer, baseNew := startPublisher(t, cfg)
	older, baseOld := startPublisher(t, cfg)
	v7, v3 := randomParams(7), randomParams(3)
	if _, err := newer.Publish(ctx, "actor", Weights{Version: 7, Params: v7}); err != nil {
		t.Fatal(err)
	}
	if _, err := older.Publish(ctx, "actor", Weights{Version: 3, Params: v3}); err != nil {
		t.Fatal(err)
	}
	if _, err := newer.Publish(ctx, "actor", Weights{Version: 7, Params: v3}); err == nil || !strings.Contains(err.Error(), "not newer than the published version 7") {
		t.Fatalf("republish of version 7: err = %v", err)
	}
	c := newClient(t, cfg)
	dst := zeroLike(v7)
	r, err := NewReceiver(c, dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(ctx, URL(baseNew, "actor"), 6); !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 6 wanted, 7 published") {
		t.Fatalf("want 6: err = %v", err)
	}
	if _, err := r.Fetch(ctx, URL(baseNew, "actor"), 7); err != nil {
		t.Fatal(err)
	}
	sameBits(t, dst, v7)
	_, err = r.Fetch(ctx, URL(baseOld, "actor"), Latest)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "older than the loaded version 7") {
		t.Fatalf("older: err = %v", err)
	}
	sameBits(t, dst, v7)
	if _, err := r.Fetch(ctx, URL(baseNew, "actor"), Latest); err != nil { // the same version loads again
		t.Fatalf("same version: %v", err)
	}
	if _, err := r.Fetch(ctx, URL(baseNew, "critic"), Latest); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("unpublished name: err = %v", err)
	}
	if _, err := newer.Publish(ctx, "../x", Weights{Version: 8, Params: v7}); err == nil {
		t.Fatal("bad name accepted")
	}
}

// TestAuth checks that a missing or wrong token is refused with 401, that
// the receiver is untouched, and that the token appears in no error, log
// line or printed config.
func TestAuth(t *testing.T) {
	cfg := testConfig(t)
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, base := startPublisher(t, cfg)
	good := randomParams(8)
	if _, err := p.Publish(context.Background(), "actor", Weights{Version: 1, Params: good}); err != nil {
		t.Fatal(err)
	}
	for _, token := range []Secret{Secret(strings.Repeat("x", len(cfg.Token))), cfg.Token + "x", Secret(strings.Repeat("y", 40))} {
		bad := cfg
		bad.Token = token
		dst := zeroLike(good)
		r, err := NewReceiver(newClient(t, bad), dst, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Fetch(context.Background(), URL(base, "actor"), Latest)
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("wrong token: err = %v", err)
		}
		sameBits(t, dst, zeroLike(good))
		for _, s := range []string{err.Error(), logs.String()} {
			if strings.Contains(s, string(token)) || strings.Contains(s, string(cfg.Token)) {
				t.Fatalf("token leaked: %s", s)
			}
		}
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Basic " + string(cfg.Token), "bearer " + string(cfg.Token)} {
		req, _ := http.NewRequest(http.MethodGet, URL(base, "actor"), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || len(body) > 100 {
			t.Fatalf("Authorization %q: status %d, body %d bytes", auth, resp.StatusCode, len(body))
		}
	}
	if !strings.Contains(logs.String(), "unauthenticated request refused") || strings.Contains(logs.String(), string(cfg.Token)) {
		t.Fatalf("logs: %s", logs.String())
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(cfg.Token)} {
		if strings.Contains(s, string(cfg.Token)) {
			t.Fatalf("printed config shows the token: %s", s)
		}
	}
}

// TestShm_EqualsHTTP fetches one snapshot through /dev/shm and through the
// stream and compares both with the source, bit for bit; then checks the
// file's life cycle.
func TestShm_EqualsHTTP(t *testing.T) {
	dir := DefaultShmDir
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Logf("%s is absent here: the shortcut runs in a temporary folder", dir)
		dir = t.TempDir()
	}
	cfg := testConfig(t)
	cfg.ShmDir = dir
	cfg.HostID = "test-host-" + string(cfg.Token[:8])
	p, base := startPublisher(t, cfg)
	src := stories(t)
	pub, err := p.Publish(context.Background(), "actor", Weights{Version: 1, Params: src})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(pub.Path)
	if err != nil || filepath.Dir(pub.Path) != dir || st.Mode().Perm() != 0o600 || st.Size() != pub.Size {
		t.Fatalf("snapshot file %q: %v, %v", pub.Path, st, err)
	}

	viaShm := zeroLike(src)
	rs, _ := NewReceiver(newClient(t, cfg), viaShm, 0)
	ms, err := rs.Fetch(context.Background(), URL(base, "actor"), 1)
	if err != nil || ms.Via != "shm" || ms.Path != pub.Path {
		t.Fatalf("shm fetch: %+v, %v", ms, err)
	}
	streamCfg := cfg
	streamCfg.ShmDir = ""
	viaHTTP := zeroLike(src)
	rh, _ := NewReceiver(newClient(t, streamCfg), viaHTTP, 0)
	mh, err := rh.Fetch(context.Background(), URL(base, "actor"), 1)
	if err != nil || mh.Via != "http" || mh.Checksum != ms.Checksum || mh.Size != ms.Size {
		t.Fatalf("http fetch: %+v, %v", mh, err)
	}
	sameBits(t, viaShm, src)
	sameBits(t, viaHTTP, viaShm)

	otherHost := cfg
	otherHost.HostID = "another-host"
	if m, err := newClient(t, otherHost).Head(context.Background(), URL(base, "actor")); err != nil || m.Path != "" {
		t.Fatalf("another host got the path: %+v, %v", m, err)
	}

	// A damaged file is refused like a damaged stream.
	orig, err := os.ReadFile(pub.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub.Path, flip(orig, len(orig)-1), 0o600); err != nil {
		t.Fatal(err)
	}
	marked := cloneParams(viaShm)
	if _, err := rs.Fetch(context.Background(), URL(base, "actor"), 1); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "via shm") {
		t.Fatalf("damaged file: err = %v", err)
	}
	sameBits(t, viaShm, marked)

	// A client whose folder is another (another /dev/shm) falls back to
	// the stream; so does one that finds the file gone.
	if err := os.WriteFile(pub.Path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := cfg
	elsewhere.ShmDir = t.TempDir()
	viaFallback := zeroLike(src)
	rf, _ := NewReceiver(newClient(t, elsewhere), viaFallback, 0)
	if m, err := rf.Fetch(context.Background(), URL(base, "actor"), 1); err != nil || m.Via != "http" {
		t.Fatalf("other folder: %+v, %v", m, err)
	}
	sameBits(t, viaFallback, src)
	gone := pub
	gone.Path = filepath.Join(dir, shmFileName(fmt.Sprint(os.Getpid()), "gone", 1))
	if _, err := openShm(dir, gone); !errors.Is(err, errNoShortcut) {
		t.Fatalf("gone file: err = %v", err)
	}
	outside := pub
	outside.Path = "/etc/passwd"
	if _, err := openShm(dir, outside); !errors.Is(err, errNoShortcut) {
		t.Fatalf("path outside the folder: err = %v", err)
	}

	// A newer snapshot replaces the file; Close removes the last one.
	pub2, err := p.Publish(context.Background(), "actor", Weights{Version: 2, Params: src})
	if err != nil || pub2.Path == pub.Path {
		t.Fatalf("publish 2: %+v, %v", pub2, err)
	}
	pub3, err := p.Publish(context.Background(), "actor", Weights{Version: 3, Params: src})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pub2.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("replaced snapshot file still there: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pub3.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot file left after Close: %v", err)
	}
	if _, err := rs.Fetch(context.Background(), URL(base, "actor"), Latest); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("closed publisher: err = %v", err)
	}
}

// TestConcurrent runs fetches from several receivers, and several at once
// into one receiver, while new versions are published. Every fetch must
// load one consistent snapshot: the weights of the version it reports.
func TestConcurrent(t *testing.T) {
	for _, shm := range []bool{false, true} {
		t.Run(fmt.Sprintf("shm=%v", shm), func(t *testing.T) {
			cfg := testConfig(t)
			if shm {
				cfg.ShmDir = t.TempDir()
				cfg.HostID = "test-host"
			}
			p, base := startPublisher(t, cfg)
			const versions, receivers, fetches = 6, 4, 5
			weights := make([]nn.Params, versions+1)
			for v := range weights {
				weights[v] = randomParams(uint64(100 + v))
			}
			ctx := context.Background()
			if _, err := p.Publish(ctx, "actor", Weights{Version: 1, Params: weights[1]}); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, cfg)
			shared, _ := NewReceiver(c, zeroLike(weights[1]), 0)
			var wg sync.WaitGroup
			errs := make(chan error, receivers*fetches*2+versions)
			wg.Go(func() {
				for v := 2; v <= versions; v++ {
					time.Sleep(2 * time.Millisecond)
					if _, err := p.Publish(ctx, "actor", Weights{Version: int64(v), Params: weights[v]}); err != nil {
						errs <- err
					}
				}
			})
			for range receivers {
				dst := zeroLike(weights[1])
				own, _ := NewReceiver(c, dst, 0)
				wg.Go(func() {
					for range fetches {
						m, err := own.Fetch(ctx, URL(base, "actor"), Latest)
						if err != nil {
							errs <- err
							return
						}
						if err := equalBits(dst, weights[m.Version]); err != nil {
							errs <- fmt.Errorf("version %d: %w", m.Version, err)
						}
					}
				})
				wg.Go(func() {
					for range fetches {
						if _, err := shared.Fetch(ctx, URL(base, "actor"), Latest); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err := equalBits(shared.params, weights[shared.Version()]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// equalBits is sameBits for goroutines.
func equalBits(got, want nn.Params) error {
	for _, w := range want {
		g := got.Find(w.Name)
		for i := range g.Data {
			if g.Data[i] != w.Tensor.Data[i] && !(g.Data[i] != g.Data[i] && w.Tensor.Data[i] != w.Tensor.Data[i]) {
				return fmt.Errorf("tensor %s[%d] = %v, want %v", w.Name, i, g.Data[i], w.Tensor.Data[i])
			}
		}
	}
	return nil
}

// TestFetch_CancelAndTimeout checks that a stalled publisher and a
// cancelled context end the fetch, and leave the weights alone.
func TestFetch_CancelAndTimeout(t *testing.T) {
	cfg := testConfig(t)
	p, _ := startPublisher(t, cfg)
	good := randomParams(9)
	if _, err := p.Publish(context.Background(), "actor", Weights{Version: 1, Params: good}); err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	hang := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:100])
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stall) })

	short := cfg
	short.Timeout = 300 * time.Millisecond
	dst := zeroLike(good)
	r, _ := NewReceiver(newClient(t, short), dst, 0)
	start := time.Now()
	_, err := r.Fetch(context.Background(), URL(hang, "actor"), Latest)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled body: err = %v after %v", err, time.Since(start))
	}
	sameBits(t, dst, zeroLike(good))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r2, _ := NewReceiver(newClient(t, cfg), dst, 0)
	if _, err := r2.Fetch(ctx, URL(hang, "actor"), Latest); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	sameBits(t, dst, zeroLike(good))
}

func TestConfig_Validate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Checksum = "md5"
	cfg.MaxBytes = 0
	cfg.Timeout = 0
	err := cfg.Validate()
	for _, want := range []string{"token has 0 bytes", `checksum "md5"`, "max bytes 0", "timeouts must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to contain %q", err, want)
		}
	}
	cfg = DefaultConfig()
	cfg.Token = "0123456789abcdef"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Token = "0123456789 abcdef"
	if err := cfg.Validate(); err == nil {
		t.Fatal("token with a space accepted")
	}
	if _, err := NewPublisher(DefaultConfig()); err == nil {
		t.Fatal("publisher without a token")
	}
	if _, err := NewClient(DefaultConfig()); err == nil {
		t.Fatal("client without a token")
	}
}

// TestPublish_Cancelled checks that a cancelled publish leaves no snapshot
// and no file behind.
func TestPublish_Cancelled(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShmDir = t.TempDir()
	p, base := startPublisher(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Publish(ctx, "actor", Weights{Version: 1, Params: randomParams(10)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := p.Latest("actor"); ok {
		t.Fatal("cancelled publish is visible")
	}
	if left, _ := os.ReadDir(cfg.ShmDir); len(left) != 0 {
		t.Fatalf("files left: %v", left)
	}
	if _, err := newClient(t, cfg).Head(context.Background(), URL(base, "actor")); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("head: err = %v", err)
	}
}
