//go:build unix

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServe_SIGTERMWithLoopingTemplate starts a real `gorlhf serve` (this
// test binary, see TestMain) on a model whose chat template loops for a
// very long time, sends a chat request, then SIGTERM: the rendering is
// stopped (503) and the process exits, with status 0, within a few
// seconds, instead of holding its shutdown until the grace period ends.
func TestServe_SIGTERMWithLoopingTemplate(t *testing.T) {
	dir := storiesFolder(t, "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve", "--model", dir, "--addr", "127.0.0.1:0", "--threads", "1")
	cmd.Env = append(os.Environ(), asBinaryEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var log strings.Builder
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/v1)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	defer cmd.Process.Kill() // never leave it running (a no-op once it has exited)
	var url string
	select {
	case url = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("gorlhf serve did not start within 60 s")
	}
	answered := make(chan int, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"messages": [{"role": "user", "content": "hi"}]}`))
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // the request is rendering
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, log.String())
		}
		t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(4 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("still running 4 s after SIGTERM\n%s", log.String())
	}
	if status := <-answered; status != http.StatusServiceUnavailable {
		t.Errorf("the chat request got %d, want 503", status)
	}
}
