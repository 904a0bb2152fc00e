package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one worker process the local launcher starts.
type Proc struct {
	Rank  int
	Roles string   // what it hosts, e.g. "actor+ref" (for messages)
	Args  []string // arguments after the executable
	Env   []string // extra KEY=VALUE entries, on top of the driver's environment
}

// Exit reports a worker process that ended before the supervisor was
// stopped: its rank, roles, host, exit status and last log lines.
type Exit struct {
	Proc   Proc
	PID    int
	Host   string
	Status string   // e.g. "signal: killed", "exit status 2"
	Tail   []string // the last lines it wrote to stderr/stdout
	Log    string   // the file holding its whole output
}

// Error names the worker and shows its last lines.
func (e Exit) Error() string {
	msg := fmt.Sprintf("cluster: worker rank %d (%s, pid %d on %s) exited: %s", e.Proc.Rank, e.Proc.Roles, e.PID, e.Host, e.Status)
	if len(e.Tail) > 0 {
		msg += "; its last log lines:\n    " + strings.Join(e.Tail, "\n    ")
	}
	if e.Log != "" {
		msg += "\n(full log: " + e.Log + ")"
	}
	return msg
}

// Supervisor runs the local launcher's worker processes and reports the
// first one that dies. Stop ends them all by PID.
type Supervisor struct {
	host   string
	procs  []*child
	exited chan Exit
	mu     sync.Mutex
	stop   bool
}

type child struct {
	proc Proc
	cmd  *exec.Cmd
	tail *tailBuffer
	log  string
	done chan struct{}
}

// TailLines is how many output lines of a worker an Exit shows.
const TailLines = 20

// Start launches every proc as exe with its arguments; each one's output
// goes to logDir/worker-<rank>.log (and is kept in a tail buffer). On
// Linux a worker also gets SIGKILL when the driver's thread that started
// it dies (a second guard beside the watch stream).
func Start(ctx context.Context, exe string, procs []Proc, logDir string) (*Supervisor, error) {
	host, _ := os.Hostname()
	s := &Supervisor{host: host, exited: make(chan Exit, len(procs))}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: worker logs: %w", err)
	}
	for _, p := range procs {
		c, err := s.spawn(exe, p, logDir)
		if err != nil {
			s.Stop(time.Second)
			return nil, err
		}
		s.procs = append(s.procs, c)
	}
	return s, nil
}

func (s *Supervisor) spawn(exe string, p Proc, logDir string) (*child, error) {
	path := filepath.Join(logDir, fmt.Sprintf("worker-%d.log", p.Rank))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: worker rank %d log: %w", p.Rank, err)
	}
	c := &child{proc: p, tail: newTailBuffer(TailLines), log: path, done: make(chan struct{})}
	cmd := exec.Command(exe, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	w := io.MultiWriter(f, c.tail)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: starting worker rank %d (%s): %w", p.Rank, p.Roles, err)
	}
	c.cmd = cmd
	go func() {
		err := cmd.Wait()
		f.Close()
		close(c.done)
		s.mu.Lock()
		stopping := s.stop
		s.mu.Unlock()
		if stopping {
			return
		}
		status := "exit status 0"
		if err != nil {
			status = err.Error()
		}
		s.exited <- Exit{Proc: p, PID: cmd.Process.Pid, Host: s.host, Status: status, Tail: c.tail.Lines(), Log: path}
	}()
	return c, nil
}

// PIDs returns the worker processes' ids by rank.
func (s *Supervisor) PIDs() map[int]int {
	out := map[int]int{}
	for _, c := range s.procs {
		out[c.proc.Rank] = c.cmd.Process.Pid
	}
	return out
}

// Exited delivers each worker that ends while the run goes on.
func (s *Supervisor) Exited() <-chan Exit { return s.exited }

// Wait waits up to grace for every worker to exit by itself (they do
// once the driver closes the rendezvous); it reports whether they did.
func (s *Supervisor) Wait(grace time.Duration) bool {
	deadline := time.After(grace)
	for _, c := range s.procs {
		select {
		case <-c.done:
		case <-deadline:
			return false
		}
	}
	return true
}

// Stop ends every worker still running: SIGTERM, then SIGKILL after
// grace, each by its PID, and waits for them.
func (s *Supervisor) Stop(grace time.Duration) {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
	for _, c := range s.procs {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	if s.Wait(grace) {
		return
	}
	for _, c := range s.procs {
		_ = c.cmd.Process.Kill()
	}
	s.Wait(5 * time.Second)
}

// tailBuffer keeps the last n lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	n     int
	lines []string
	part  []byte
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.push(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > 4096 { // a very long line: keep its start
		t.push(string(t.part[:4096]) + "…")
		t.part = t.part[:0]
	}
	return len(p), nil
}

func (t *tailBuffer) push(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// Lines returns the kept lines (and an unfinished last line).
func (t *tailBuffer) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.part) > 0 {
		out = append(out, string(t.part))
	}
	return out
}

// ErrNoWorkers is returned when a launcher is asked to start nothing.
var ErrNoWorkers = errors.New("cluster: no worker processes to start")
