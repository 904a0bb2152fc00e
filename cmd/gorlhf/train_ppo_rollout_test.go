package main

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/gemm"
)

// serveProcess is a real `gorlhf serve` process (this test binary, see
// TestMain) on loopback.
type serveProcess struct {
	url  string // base URL, without /v1
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

// startServe starts `gorlhf serve` on stories260K with the kernel and
// thread count of ppoArgs (so its numbers are the in-process engine's)
// and stops it by PID when the test ends.
func startServe(t *testing.T) *serveProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{done: make(chan struct{})}
	p.cmd = exec.Command(exe, "serve", "--addr", "127.0.0.1:0", "--threads", "1", "--gemm", gemm.Default().Name())
	p.cmd.Env = append(os.Environ(), asBinaryEnv+"=1")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)/v1`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	select {
	case p.url = <-urls:
	case <-p.done:
		t.Fatalf("gorlhf serve exited at start:\n%s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatal("gorlhf serve did not start within 60 s")
	}
	return p
}

// kill stops the process by its PID and waits for it.
func (p *serveProcess) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *serveProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// TestPPO_OpenAIBackend: PPO generating through two real gorlhf serve
// processes (--rollout.backend openai, weights pushed through a snapshot
// folder) ends with the in-process run's final weights and metrics, bit
// for bit; with one engine killed during the run (the vLLM-style weight
// routes this time) too; and engines left at another run's weights are
// refused as stale.
func TestPPO_OpenAIBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three PPO runs and four serve processes")
	}
	prompts := placedPrompts(t)
	want := t.TempDir()
	inProcess := runPPOTimed(t, ppoArgs(prompts, want))

	s1, s2 := startServe(t), startServe(t)
	got := t.TempDir()
	external := func(sync string, urls ...string) []string {
		return []string{"--rollout.backend", "openai", "--rollout.urls", strings.Join(urls, ","), "--rollout.weight_sync", sync,
			"--rollout.sync_dir", t.TempDir(), "--rollout.max_retries", "1", "--rollout.request_timeout", "60"}
	}
	overHTTP := runPPOTimed(t, ppoArgs(prompts, got, external("disk", s1.url, s2.url)...))
	assertSameRunLoose(t, want, got, "mismatch/")
	t.Logf("in process %v, through two engines %v", inProcess, overHTTP)

	// the same engines now hold that run's last weights: a new run
	// starting from the initial policy must refuse their samples
	err := runTrain(context.Background(), ppoArgs(prompts, t.TempDir(), external("disk", s1.url, s2.url)...))
	if err == nil || !strings.Contains(err.Error(), "stale weights") {
		t.Fatalf("a run against engines at another version: %v", err)
	}

	// one of two fresh engines is killed at a random moment of the run's
	// first half (by the in-process run's time, the faster)
	s3, s4 := startServe(t), startServe(t)
	killed := t.TempDir()
	at := time.Duration(float64(inProcess) * (0.05 + 0.45*rand.Float64()))
	go func() {
		time.Sleep(at)
		s4.kill()
	}()
	d := runPPOTimed(t, ppoArgs(prompts, killed, external("vllm", s3.url, s4.url)...))
	select {
	case <-s4.done:
	default:
		t.Fatalf("the run (%v) ended before the engine was killed (at %v)", d, at)
	}
	assertSameRunLoose(t, want, killed, "mismatch/")
	t.Logf("engine killed %v into a run of %v", at, d)
	if t.Failed() {
		t.Logf("engine logs:\n%s\n%s", s3.output(), s4.output())
	}
}
