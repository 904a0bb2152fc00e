package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
)

// The fault bars of issue 18, with real processes: a worker killed with
// SIGKILL mid-run, the driver killed (local launcher, and the launchers
// that start every rank themselves), a worker that cannot reach its
// driver, and a worker started with other settings. Linux only: the
// tests find processes in /proc.

// faultTimeout is the bar: the driver reports a dead worker, and workers
// notice a dead driver, within it.
const faultTimeout = 30 * time.Second

// gaeFlags is PPO with a critic and a KL reference (rule reward): the
// local launcher places actor (rank 1), ref (2), critic (3) and rollout
// (4).
var gaeFlags = []string{"--algo.advantage.estimator", "gae", "--algo.kl.init_coef", "0.01"}

// longRun makes a run that lasts long enough to be killed in the middle,
// with a checkpoint after every iteration.
func longRun(iterations int) []string {
	return []string{"--train.max_iterations", strconv.Itoa(iterations), "--ckpt.save_steps", "1"}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is something that ends once: a process or an in-process run.
type running struct {
	done chan struct{} // closed when it ended
	err  error         // its result, once done is closed
}

// goRun runs f in a goroutine.
func goRun(f func() error) *running {
	r := &running{done: make(chan struct{})}
	go func() {
		r.err = f()
		close(r.done)
	}()
	return r
}

// wait waits up to d for the end; ok is false on time-out.
func (r *running) wait(d time.Duration) (err error, ok bool) {
	select {
	case <-r.done:
		return r.err, true
	case <-time.After(d):
		return nil, false
	}
}

// gorlhfProcess starts this test binary as `gorlhf args...` with extra
// environment entries; cleanup kills it by PID if it still runs.
func startGorlhf(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer, *running) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), asBinaryEnv+"=1"), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := goRun(cmd.Wait)
	t.Cleanup(func() {
		if _, ok := r.wait(0); ok {
			return
		}
		_ = cmd.Process.Kill()
		if _, ok := r.wait(10 * time.Second); !ok {
			t.Errorf("pid %d did not die", cmd.Process.Pid)
		}
	})
	return cmd, out, r
}

// procInfo is one process as /proc shows it.
type procInfo struct {
	pid, ppid int
	state     byte
	args      []string
}

// readProc reads /proc/<pid>; ok is false when no such process exists.
func readProc(pid int) (procInfo, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 2 {
		return procInfo{}, false
	}
	p := procInfo{pid: pid, state: f[0][0]}
	p.ppid, _ = strconv.Atoi(f[1])
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return p, true
}

// workersOf returns, by rank, the live `gorlhf worker` children of parent
// whose command line names a path in dir (the run's output folder).
func workersOf(parent int, dir string) map[int]int {
	out := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.ppid != parent || p.state == 'Z' || len(p.args) < 2 || p.args[1] != "worker" || !p.names(dir) {
			continue
		}
		if i := slices.Index(p.args, "--rank"); i > 0 && i+1 < len(p.args) {
			rank, _ := strconv.Atoi(p.args[i+1])
			out[rank] = pid
		}
	}
	return out
}

// names says whether the process's command line names dir or a path in it.
func (p procInfo) names(dir string) bool {
	return slices.ContainsFunc(p.args, func(a string) bool { return a == dir || strings.HasPrefix(a, dir+string(filepath.Separator)) })
}

// killWorkers stops, by PID, every worker of parent's run in dir that is left.
func killWorkers(parent int, dir string) {
	for _, pid := range workersOf(parent, dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitStep waits for a checkpoint of at least minStep in the run's
// actor checkpoint folder, or for the run to end first.
func waitStep(t *testing.T, out string, minStep int, run *running) {
	t.Helper()
	root := filepath.Join(out, "checkpoints", "_actor")
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if dir, _ := train.LatestCheckpoint(root); dir != "" {
			var step int
			if _, err := fmt.Sscanf(filepath.Base(dir), "global_step%d", &step); err == nil && step >= minStep {
				return
			}
		}
		if err, ended := run.wait(10 * time.Millisecond); ended {
			t.Fatalf("the run ended (%v) before checkpoint %d", err, minStep)
		}
	}
	t.Fatalf("no checkpoint of step ≥ %d in %s", minStep, root)
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func runSecret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestFault_WorkerKilled: kill -9 of the critic's or the actor's worker
// process mid-run stops the driver within 30 s with an error naming the
// rank, the roles, the pid, the host, the exit status and the worker's
// last log lines, and leaves no worker running; rerunning the same
// command with --ckpt.load_enable resumes from the last checkpoint and
// ends with the weights (actor and critic) and last metrics row of an
// uninterrupted run, bit for bit.
func TestFault_WorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with worker processes and kills them")
	}
	useTestBinary(t)
	prompts := placedPrompts(t)
	dir := t.TempDir()
	const iterations = 12
	flags := append(slices.Clone(gaeFlags), longRun(iterations)...)
	whole := filepath.Join(dir, "uninterrupted")
	d := runPPOTimed(t, ppoArgs(prompts, whole, flags...))
	t.Logf("uninterrupted, in-process: %v", d.Round(time.Millisecond))
	host, _ := os.Hostname()

	for _, target := range []struct {
		rank  int
		roles string
	}{{3, "critic"}, {1, "actor"}} {
		t.Run(target.roles, func(t *testing.T) {
			out := filepath.Join(dir, target.roles)
			args := ppoArgs(prompts, out, append(slices.Clone(flags), "--launcher", "local")...)
			ctx, cancel := context.WithCancel(context.Background())
			ended := goRun(func() error { return runTrain(ctx, args) })
			t.Cleanup(func() {
				cancel()
				if _, ok := ended.wait(faultTimeout); !ok {
					t.Error("the driver did not return after its context ended")
				}
				killWorkers(os.Getpid(), out)
			})

			waitStep(t, out, 2, ended)
			pid, ok := workersOf(os.Getpid(), out)[target.rank]
			if !ok {
				t.Fatalf("no worker process of rank %d among %v", target.rank, workersOf(os.Getpid(), out))
			}
			time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond) // anywhere in an iteration (or a checkpoint)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			err, ok := ended.wait(faultTimeout)
			if !ok {
				t.Fatalf("the driver did not stop within %v of the %s worker's death", faultTimeout, target.roles)
			}
			t.Logf("killed %s (rank %d, pid %d): the driver returned in %v", target.roles, target.rank, pid, time.Since(killed).Round(time.Millisecond))
			if err == nil {
				t.Fatal("the driver finished the run without its worker")
			}
			msg := err.Error()
			want := fmt.Sprintf("worker rank %d (%s, pid %d on %s) exited: signal: killed", target.rank, target.roles, pid, host)
			log := filepath.Join(out, "workers", fmt.Sprintf("worker-%d.log", target.rank))
			for _, w := range []string{want, "its last log lines:", "msg=registered rank=" + strconv.Itoa(target.rank), "full log: " + log} {
				if !strings.Contains(msg, w) {
					t.Fatalf("the driver's error does not say %q:\n%s", w, msg)
				}
			}
			if left := workersOf(os.Getpid(), out); len(left) > 0 {
				t.Fatalf("workers left running after the driver returned: %v", left)
			}
			latest, _ := train.LatestCheckpoint(filepath.Join(out, "checkpoints", "_actor"))
			t.Logf("resuming from %s", filepath.Base(latest))

			d := runPPOTimed(t, append(args, "--ckpt.load_enable"))
			t.Logf("resumed run: %v", d.Round(time.Millisecond))
			if b, _ := os.ReadFile(filepath.Join(out, "train.log")); !bytes.Contains(b, []byte(`"msg":"resumed from checkpoint"`)) {
				t.Fatal("the second run did not resume")
			}
			for _, f := range []string{safetensors.SingleName, filepath.Join("critic", safetensors.SingleName)} {
				assertSameWeights(t, filepath.Join(whole, f), filepath.Join(out, f))
			}
			rw, ro := metricRows(t, whole), metricRows(t, out)
			if len(ro) == 0 || !reflect.DeepEqual(rw[len(rw)-1], ro[len(ro)-1]) {
				t.Fatalf("last metrics row after resuming:\n%v\nuninterrupted:\n%v", ro[len(ro)-1], rw[len(rw)-1])
			}
		})
	}
}

// TestFault_DriverKilled: kill -9 of a --launcher local driver mid-run;
// every one of its worker processes exits by itself within 30 s. The
// test process becomes the orphans' subreaper, so it reaps them and
// reports how each ended (SIGKILL: the parent-death signal the
// supervisor asks the kernel for; exit status 1: the worker saw the
// watch stream break).
func TestFault_DriverKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with worker processes and kills the driver")
	}
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", e)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })
	prompts := placedPrompts(t)
	out := filepath.Join(t.TempDir(), "run")
	args := append([]string{"train"}, ppoArgs(prompts, out, append(slices.Clone(gaeFlags), append(longRun(400), "--launcher", "local")...)...)...)
	driver, log, ended := startGorlhf(t, nil, args...)
	var workers map[int]int
	t.Cleanup(func() {
		for _, pid := range workers { // any still running, by PID
			if p, ok := readProc(pid); ok && p.state != 'Z' && p.names(out) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
	})

	waitStep(t, out, 1, ended)
	workers = workersOf(driver.Process.Pid, out)
	if len(workers) != 4 {
		t.Fatalf("driver pid %d has workers %v, want ranks 1-4\n%s", driver.Process.Pid, workers, log)
	}
	if err := driver.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ended.wait(faultTimeout)
	pending := maps.Clone(workers)
	for len(pending) > 0 && time.Since(killed) < faultTimeout {
		for rank, pid := range pending {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			how := ""
			switch {
			case got == pid && ws.Signal() == syscall.SIGKILL:
				how = "was killed (SIGKILL: the parent-death signal)"
			case got == pid && ws.Signaled():
				how = "was killed by signal " + ws.Signal().String()
			case got == pid:
				how = fmt.Sprintf("exited with status %d", ws.ExitStatus())
			case errors.Is(err, syscall.ECHILD): // reaped elsewhere: gone if /proc says so
				if p, ok := readProc(pid); !ok || p.state == 'Z' || !p.names(out) {
					how = "gone (reaped by another process)"
				}
			}
			if how != "" {
				t.Logf("worker rank %d (pid %d) %s %v after the driver's death", rank, pid, how, time.Since(killed).Round(time.Millisecond))
				delete(pending, rank)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(pending) > 0 {
		t.Fatalf("workers still running %v after the driver was killed: %v", faultTimeout, pending)
	}
}

// TestFault_DriverKilledWatch: under a launcher that starts every rank
// itself (Slurm, Kubernetes) the workers are not the driver's children,
// so only the watch stream can tell them the driver is gone. The test
// starts all five ranks of `train ppo --launcher slurm` as its own
// children (identities from flags, loopback), kills the driver with
// SIGKILL mid-run, and every worker must exit within 30 s with status 1
// and an error saying its watch stream broke: the driver is gone.
func TestFault_DriverKilledWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO across five processes and kills the driver")
	}
	prompts := placedPrompts(t)
	out := filepath.Join(t.TempDir(), "run")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	env := []string{launch.VarRunSecret + "=" + runSecret(t)}
	base := ppoArgs(prompts, out, append(slices.Clone(gaeFlags), append(longRun(400), "--launcher", "slurm", "--worker_host", "127.0.0.1")...)...)
	start := func(rank int) (*exec.Cmd, *lockedBuffer, *running) {
		args := append(append([]string{"train"}, base...), "--rank", strconv.Itoa(rank), "--world_size", "5", "--driver_addr", addr)
		return startGorlhf(t, env, args...)
	}
	driver, driverLog, driverEnded := start(0)
	type worker struct {
		cmd   *exec.Cmd
		log   *lockedBuffer
		ended *running
	}
	var workers []worker
	for rank := 1; rank <= 4; rank++ {
		c, l, e := start(rank)
		workers = append(workers, worker{c, l, e})
	}
	waitStep(t, out, 1, driverEnded)
	if err := driver.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	driverEnded.wait(faultTimeout)
	for i, w := range workers {
		err, ok := w.ended.wait(time.Until(killed.Add(faultTimeout)))
		switch {
		case ok:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("worker rank %d ended with %v, want exit status 1:\n%s", i+1, err, w.log)
			}
			// The stream was open (its request had returned) when the
			// driver died: it broke, rather than a request failing.
			if !strings.Contains(w.log.String(), "the driver is gone: connection closed") {
				t.Errorf("worker rank %d does not say its watch stream to the driver broke:\n%s", i+1, w.log)
			}
			t.Logf("worker rank %d exited %v after the driver's death: %s", i+1, time.Since(killed).Round(time.Millisecond), lastLine(w.log.String()))
		default:
			t.Fatalf("worker rank %d (pid %d) still runs %v after the driver was killed:\n%s\ndriver:\n%s", i+1, w.cmd.Process.Pid, faultTimeout, w.log, driverLog)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestWorker_UnreachableDriver: a worker whose driver does not answer
// retries with back-off for --join_timeout, then exits with status 1 and
// an error naming its rank, the driver's address and the attempts.
func TestWorker_UnreachableDriver(t *testing.T) {
	prompts := placedPrompts(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	args := append([]string{"worker", "--rank", "1", "--world_size", "5", "--driver_addr", addr, "--", "train"},
		ppoArgs(prompts, filepath.Join(t.TempDir(), "run"), append(slices.Clone(gaeFlags), "--launcher", "local", "--join_timeout", "2s")...)...)
	start := time.Now()
	_, log, ended := startGorlhf(t, []string{launch.VarRunSecret + "=" + runSecret(t)}, args...)
	err, ok := ended.wait(faultTimeout)
	if !ok {
		t.Fatalf("the worker still tries after %v:\n%s", faultTimeout, log)
	}
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("worker ended with %v, want exit status 1:\n%s", err, log)
	}
	msg := log.String()
	m := regexp.MustCompile(`worker rank 1 could not reach the driver at ` + regexp.QuoteMeta(addr) + ` in 2s \((\d+) attempts\)`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("the error does not name the rank, the driver's address and the attempts:\n%s", msg)
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 || took < 2*time.Second {
		t.Fatalf("gave up after %s attempts in %v, want retries for 2s", m[1], took)
	}
	t.Logf("gave up in %v: %s", took.Round(time.Millisecond), lastLine(msg))
}

// TestWorker_DigestMismatch: a worker started with other settings (a
// different --actor.adam.lr) is refused by the driver at registration,
// with both config digests named, and exits at once instead of retrying.
func TestWorker_DigestMismatch(t *testing.T) {
	prompts := placedPrompts(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	secret := runSecret(t)
	t.Setenv(launch.VarRunSecret, secret)
	base := ppoArgs(prompts, filepath.Join(t.TempDir(), "run"), append(slices.Clone(gaeFlags), "--launcher", "slurm",
		"--worker_host", "127.0.0.1", "--world_size", "5", "--driver_addr", addr, "--join_timeout", "60s")...)
	ctx, cancel := context.WithCancel(context.Background())
	driverEnded := goRun(func() error { return runTrain(ctx, append(slices.Clone(base), "--rank", "0")) })
	t.Cleanup(func() {
		cancel()
		if _, ok := driverEnded.wait(faultTimeout); !ok {
			t.Error("the driver did not return after its context ended")
		}
	})

	workerArgs := append(append([]string{"train"}, base...), "--rank", "1", "--actor.adam.lr", "2e-3")
	start := time.Now()
	_, log, ended := startGorlhf(t, []string{launch.VarRunSecret + "=" + secret}, workerArgs...)
	err, ok := ended.wait(faultTimeout)
	if !ok {
		t.Fatalf("the worker with other settings still runs after %v:\n%s", faultTimeout, log)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("worker ended with %v, want exit status 1:\n%s", err, log)
	}
	msg := log.String()
	host, _ := os.Hostname()
	re := regexp.MustCompile(`refused by the driver: config digest mismatch: driver (\S+), worker rank 1 on ` + regexp.QuoteMeta(host) + ` (\S+) \(started with other settings\)`)
	m := re.FindStringSubmatch(msg)
	if m == nil || m[1] == m[2] {
		t.Fatalf("the refusal does not name both digests:\n%s", msg)
	}
	t.Logf("refused in %v: driver %s, worker %s", time.Since(start).Round(time.Millisecond), m[1], m[2])
	cancel()
	err, ok = driverEnded.wait(faultTimeout)
	if !ok {
		t.Fatal("the driver did not return after its context ended")
	}
	if err == nil || !strings.Contains(err.Error(), "never registered") {
		t.Fatalf("driver: %v, want one naming the ranks that never registered", err)
	}
}
