package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/collective"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/group"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// dpFlags puts the actor and the critic on 2 data-parallel ranks each at
// ZeRO stage 2 (with gaeFlags: driver, actor 1-2, ref 3, critic 4-5,
// rollout 6).
var dpPlaceFlags = []string{"--actor.num_workers_per_node", "2", "--critic.num_workers_per_node", "2"}

// runPPOInprocDP runs `train ppo` (args after `train`, without placement
// flags) in this process with the actor and the critic on n goroutine
// ranks behind role/group's fan-outs, the other roles built once: the
// in-process twin of a placed data-parallel run.
func runPPOInprocDP(t *testing.T, args []string, n int) {
	t.Helper()
	c, err := parsePPO(args[1:])
	if err != nil {
		t.Fatal(err)
	}
	te, err := ppoSetup(c.cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := ppoBuilder(c.cfg, te)(inproc.Want{Reference: true, Reward: true, Rollout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer driver.Close()
	ac, cc := collective.NewLocal(n), collective.NewLocal(n)
	defer func() {
		for r := range n {
			ac[r].Close()
			cc[r].Close()
		}
	}()
	ranks, errs := make([]*inproc.Roles, n), make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		env, err := ppoSetup(c.cfg, true) // every rank loads its own model, as a worker does
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			w := inproc.Want{Actor: true, Critic: true, ActorComm: ac[r], CriticComm: cc[r]}
			if ranks[r], errs[r] = ppoBuilder(c.cfg, env)(w); errs[r] != nil {
				ac[r].Close()
				cc[r].Close()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	set := driver.Set
	actors, critics := make([]role.Actor, n), make([]role.Critic, n)
	for r, x := range ranks {
		actors[r], critics[r] = x.Actor, x.Critic
	}
	if set.Actor, err = group.NewActor(actors); err != nil {
		t.Fatal(err)
	}
	if set.Critic, err = group.NewCritic(critics); err != nil {
		t.Fatal(err)
	}
	rt := ppoRuntime(c.cfg, te)
	rt.MaxPositions = driver.MaxPositions()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := ppo.New(ctx, c.cfg, set, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPlaced_DataParallel is issue 13's bar for the placed PPO actor and
// critic: `train ppo --launcher local --actor.num_workers_per_node 2
// --critic.num_workers_per_node 2 --ds.zero_stage 2` (six worker
// processes; each data-parallel group joins over TCP through the
// driver's board) ends with byte-identical weights and the same metrics
// rows as the same run in this process with the actor and the critic on
// 2 goroutine ranks (same --gemm and --threads; the TCP ring reduces in
// the in-process group's order).
func TestPlaced_DataParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with six worker processes")
	}
	useTestBinary(t)
	prompts := placedPrompts(t)
	dir := t.TempDir()
	flags := append(slices.Clone(gaeFlags), "--ds.zero_stage", "2")
	inproc := filepath.Join(dir, "inproc-dp")
	start := time.Now()
	runPPOInprocDP(t, ppoArgs(prompts, inproc, flags...), 2)
	t.Logf("in-process, 2 ranks: %v", time.Since(start).Round(time.Millisecond))
	placed := filepath.Join(dir, "local-dp")
	d := runPPOTimed(t, ppoArgs(prompts, placed, append(append(slices.Clone(flags), dpPlaceFlags...), "--launcher", "local")...))
	t.Logf("--launcher local, 2 ranks each: %v", d.Round(time.Millisecond))
	assertWorkers(t, placed, 6)
	for rank, want := range map[int]string{1: "role=actor group_rank=0 group_size=2", 2: "role=actor group_rank=1 group_size=2",
		4: "role=critic group_rank=0 group_size=2", 5: "role=critic group_rank=1 group_size=2"} {
		b, _ := os.ReadFile(filepath.Join(placed, "workers", fmt.Sprintf("worker-%d.log", rank)))
		if !bytes.Contains(b, []byte(`msg="data parallel" rank=`+strconv.Itoa(rank)+" "+want+" param_bytes=")) {
			t.Fatalf("worker %d's log does not report its data-parallel memory (%s):\n%s", rank, want, b)
		}
	}
	assertSameRun(t, inproc, placed)
}
