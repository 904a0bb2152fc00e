package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/launch/jobset"
)

const launchUsage = `usage: gorlhf launch k8s --image IMG [flags] -- train ppo [train flags]
       gorlhf launch plan -- train ppo [train flags]
       gorlhf launch env [--rank N ...] [-- train ppo [train flags]]

  k8s   print one Kubernetes JobSet that runs the training across pods
  plan  print the placement: groups, roles, ranks and the process count
        (srun --ntasks under Slurm)
  env   print who this process is under its launcher (srun, torchrun, mpirun,
        a JobSet pod) and, given the train flags, which roles it hosts`

// runLaunch is `gorlhf launch k8s|env`.
func runLaunch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(launchUsage)
	}
	switch args[0] {
	case "k8s":
		return launchK8s(args[1:], os.Stdout)
	case "plan":
		return launchPlan(args[1:], os.Stdout)
	case "env":
		return launchEnv(args[1:], os.LookupEnv, os.Stdout)
	case "-h", "--help", "help":
		fmt.Println(launchUsage)
		return nil
	}
	return fmt.Errorf("launch: unknown subcommand %q\n%s", args[0], launchUsage)
}

// launchK8s prints the JobSet for `-- train ppo ...`.
func launchK8s(args []string, stdout io.Writer) error {
	c := jobset.DefaultConfig()
	fs := newFlagSet("launch k8s", "launch k8s --image IMG [flags] -- train ppo [train flags]")
	fs.StringVar(&c.Image, "image", c.Image, "container image whose entrypoint is gorlhf (see Dockerfile)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace written into the manifest (default: kubectl's)")
	fs.StringVar(&c.Name, "name", c.Name, "JobSet name: pod DNS names, run id and default Secret name derive from it")
	fs.StringVar(&c.ImagePullPolicy, "image_pull_policy", c.ImagePullPolicy, "Always, IfNotPresent or Never (default: the cluster's)")
	fs.IntVar(&c.DriverPort, "driver_port", c.DriverPort, "port the driver listens on")
	fs.StringVar(&c.SecretName, "secret", c.SecretName, "Secret holding the run secret (default <name>-secret; create it before applying)")
	fs.StringVar(&c.SecretKey, "secret_key", c.SecretKey, "key of the run secret inside the Secret")
	fs.StringVar(&c.Worker.CPU, "cpu", "", "CPU request of each worker pod (e.g. 8, 500m)")
	fs.StringVar(&c.Worker.Memory, "memory", "", "memory request and limit of each worker pod (e.g. 32Gi)")
	fs.IntVar(&c.Worker.GPUs, "gpus", 0, "nvidia.com/gpu limit of each worker pod")
	fs.StringVar(&c.Driver.CPU, "driver_cpu", "", "CPU request of the driver pod")
	fs.StringVar(&c.Driver.Memory, "driver_memory", "", "memory request and limit of the driver pod")
	fs.StringVar(&c.Volume, "volume", "", "PersistentVolumeClaim mounted in every pod (put --ckpt.output_dir and any --config file on it)")
	fs.StringVar(&c.MountPath, "mount_path", c.MountPath, "where --volume is mounted")
	own, train := splitDashes(args)
	if err := fs.Parse(own); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("launch k8s: unexpected argument %q (the training command goes after --)", fs.Arg(0))
	}
	run, err := placeTraining(train, launch.K8s)
	if err != nil {
		return err
	}
	c.DriverArgs = run.args
	c.WorkerArgs = append([]string{"worker", "--"}, run.args...)
	out, err := jobset.Render(run.plan, c)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// launchPlan prints the placement table of `-- train ppo ...`.
func launchPlan(args []string, stdout io.Writer) error {
	own, train := splitDashes(args)
	if len(own) > 0 && (own[0] == "-h" || own[0] == "--help") {
		fmt.Fprintln(stdout, "usage: gorlhf launch plan -- train ppo [train flags]")
		return nil
	}
	if len(own) > 0 {
		return fmt.Errorf("launch plan: unexpected argument %q (the training command goes after --)", own[0])
	}
	run, err := placeTraining(train, "")
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, run.plan)
	return err
}

// launchEnv prints the identity ParseEnv finds and, with train flags
// after --, the group of the placement plan this rank belongs to.
func launchEnv(args []string, lookup launch.LookupFunc, stdout io.Writer) error {
	var flags launch.Flags
	fs := newFlagSet("launch env", "launch env [identity flags] [-- train ppo [train flags]]")
	flags.RegisterFlags(fs)
	own, train := splitDashes(args)
	if err := fs.Parse(own); err != nil {
		return err
	}
	id, err := launch.ParseEnv(lookup, flags)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, id)
	keys := make([]string, 0, len(id.From))
	for k := range id.From {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + id.From[k]
	}
	fmt.Fprintln(stdout, "  from", strings.Join(keys, " "))
	if train == nil {
		return nil
	}
	run, err := placeTraining(train, "")
	if err != nil {
		return err
	}
	g, r, err := run.plan.Assign(id)
	if err != nil {
		return err
	}
	roles := make([]string, len(g.Roles))
	for i, x := range g.Roles {
		roles[i] = string(x)
	}
	fmt.Fprintf(stdout, "  group %s [%s], its node %d worker %d; plan: %s, %d processes\n", g.Name, strings.Join(roles, ","), r.Node, r.Local, run.plan.Launcher, run.plan.WorldSize)
	return nil
}

// placedRun is a training command line and its placement.
type placedRun struct {
	plan launch.Plan
	args []string // the command line the pods run, --launcher included
}

// placeTraining parses `train ppo [flags]` (placement flags included, as
// a config file may set them too) and plans its placement. A non-empty
// want is the launcher the run must use; it is added to the arguments
// when they do not name one.
func placeTraining(args []string, want launch.Launcher) (placedRun, error) {
	if len(args) < 2 || args[0] != "train" || args[1] != "ppo" {
		return placedRun{}, errors.New("launch: give the training command after --, as in: -- train ppo --actor.model_name_or_path ... (only train ppo places roles)")
	}
	c, err := parsePPOFlags(args[2:], want)
	if err != nil {
		return placedRun{}, err
	}
	if want != "" && c.place.Launcher != want {
		return placedRun{}, fmt.Errorf("launch %s: the training command says --launcher %s", want, c.place.Launcher)
	}
	if err := c.cfg.Validate(); err != nil {
		return placedRun{}, err
	}
	p, err := c.plan()
	if err != nil {
		return placedRun{}, err
	}
	out := slices.Clone(args)
	given := false
	c.f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "launcher" })
	if !given && want != "" {
		out = slices.Insert(out, 2, "--launcher="+string(want))
	}
	return placedRun{plan: p, args: out}, nil
}

// splitDashes splits args at the first "--": the command's own flags,
// then the rest (nil when there is no "--").
func splitDashes(args []string) (own, rest []string) {
	i := slices.Index(args, "--")
	if i < 0 {
		return args, nil
	}
	return args[:i], append([]string{}, args[i+1:]...)
}
