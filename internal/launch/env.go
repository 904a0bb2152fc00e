package launch

import (
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// The GORLHF_* variables of the environment contract. They override every
// launcher's variables; command-line flags override them.
const (
	VarRank       = "GORLHF_RANK"
	VarWorldSize  = "GORLHF_WORLD_SIZE"
	VarLocalRank  = "GORLHF_LOCAL_RANK"
	VarNodeRank   = "GORLHF_NODE_RANK"
	VarDriverAddr = "GORLHF_DRIVER_ADDR" // host:port, or a host alone
	VarRunID      = "GORLHF_RUN_ID"
	// VarRunSecret carries the per-run secret that authenticates every
	// connection. ParseEnv does not read it (an Identity is printable);
	// the transport does.
	VarRunSecret = "GORLHF_RUN_SECRET"
)

// DefaultDriverPort is the driver's port when nothing sets one.
const DefaultDriverPort = 7477

// EnvKind names the launcher whose variables a process was started with.
type EnvKind string

// The launchers ParseEnv recognises.
const (
	EnvNone     EnvKind = "none"     // no launcher variables: flags, GORLHF_* or defaults only
	EnvTorchrun EnvKind = "torchrun" // RANK, WORLD_SIZE, MASTER_ADDR, …
	EnvOpenMPI  EnvKind = "openmpi"  // OMPI_COMM_WORLD_* and/or PMIX_RANK
	EnvTrainer  EnvKind = "trainer"  // Kubeflow Trainer v2: PET_*
	EnvSlurm    EnvKind = "slurm"    // SLURM_PROCID, SLURM_NTASKS, …
	EnvJobSet   EnvKind = "jobset"   // a Kubernetes Indexed Job: JOB_COMPLETION_INDEX
)

// Identity is who a process is within a run.
type Identity struct {
	Rank       int    // 0 is the driver
	WorldSize  int    // processes in the run, driver included
	LocalRank  int    // index among the run's processes on this host
	NodeRank   int    // index of this host among the run's hosts
	DriverHost string // where rank 0 listens
	DriverPort int
	RunID      string // "" when nothing names the run
	Env        EnvKind
	// From names where each field came from: a flag ("--rank"), a
	// variable ("SLURM_PROCID") or "default". Keys are the field names
	// rank, world_size, local_rank, node_rank, driver_host, driver_port
	// and run_id.
	From map[string]string
}

// DriverAddr is DriverHost:DriverPort.
func (id Identity) DriverAddr() string {
	return net.JoinHostPort(id.DriverHost, strconv.Itoa(id.DriverPort))
}

// String is a one-line summary, e.g. "rank 2/5 local 0 node 1 driver n1:7477 run 42 (slurm)".
func (id Identity) String() string {
	return fmt.Sprintf("rank %d/%d local %d node %d driver %s run %q (%s)",
		id.Rank, id.WorldSize, id.LocalRank, id.NodeRank, id.DriverAddr(), id.RunID, id.Env)
}

// Flags are the identity values given on the command line, as typed;
// "" means not given. They win over every variable.
type Flags struct {
	Rank, WorldSize, LocalRank, NodeRank string
	DriverAddr                           string // host:port or host
	RunID                                string
}

// RegisterFlags binds --rank, --world_size, --local_rank, --node_rank,
// --driver_addr and --run_id to f.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Rank, "rank", f.Rank, "this process's rank, 0 = driver (default: $"+VarRank+", else the launcher's)")
	fs.StringVar(&f.WorldSize, "world_size", f.WorldSize, "processes in the run (default: $"+VarWorldSize+", else the launcher's)")
	fs.StringVar(&f.LocalRank, "local_rank", f.LocalRank, "index among the run's processes on this host (default: $"+VarLocalRank+", else the launcher's)")
	fs.StringVar(&f.NodeRank, "node_rank", f.NodeRank, "index of this host (default: $"+VarNodeRank+", else the launcher's)")
	fs.StringVar(&f.DriverAddr, "driver_addr", f.DriverAddr, "driver host:port (default: $"+VarDriverAddr+", else the launcher's)")
	fs.StringVar(&f.RunID, "run_id", f.RunID, "run id (default: $"+VarRunID+", else the launcher's job id)")
}

// LookupFunc looks up one environment variable (os.LookupEnv's shape).
type LookupFunc func(key string) (string, bool)

// field indexes the values of an Identity that sources can set.
type field int

const (
	fRank field = iota
	fWorld
	fLocal
	fNode
	fHost
	fPort
	fRunID
	numFields
)

var fieldKeys = [numFields]string{"rank", "world_size", "local_rank", "node_rank", "driver_host", "driver_port", "run_id"}

// setting is one value as a source gives it: the raw text, its origin
// (a flag or variable name) and an optional conversion into the field's
// value (the first host of a Slurm host list, torchrun's port + 1).
type setting struct {
	val, from string
	conv      func(string) (string, error)
}

func (s setting) set() bool { return s.from != "" }

// value returns the converted value, or an error naming the origin.
func (s setting) value() (string, error) {
	if s.conv == nil {
		return s.val, nil
	}
	v, err := s.conv(s.val)
	if err != nil {
		return "", fmt.Errorf("launch: %s=%q: %w", s.from, s.val, err)
	}
	return v, nil
}

// source is what one layer of the contract says about each field.
type source struct {
	kind EnvKind
	key  setting // the variable that identified the launcher (for conflict messages)
	s    [numFields]setting
	// rankErr, when set, says why this launcher's rank must not be used
	// (a Slurm batch script is not an srun task).
	rankErr error
}

// ParseEnv works out the identity of this process: each field from flags,
// else the GORLHF_* variables, else the variables of the launcher that
// started the process, else its default (rank 0 of 1, local and node rank
// 0, driver 127.0.0.1:DefaultDriverPort, no run id).
//
// Launchers nest in known ways — torchrun or mpirun inside a Slurm job,
// torchrun inside Kubeflow Trainer, Trainer on JobSet — and then the
// innermost one gives the ranks (its processes are the run's), the outer
// ones only the driver host, port or run id it lacks. Any other mix is an
// error naming both launchers' variables. Under torchrun the driver port
// is MASTER_PORT + 1: torchrun's own agent holds MASTER_PORT.
//
// Errors name the flag or variable and its value.
func ParseEnv(lookup LookupFunc, flags Flags) (Identity, error) {
	launchers, err := detect(lookup)
	if err != nil {
		return Identity{}, err
	}
	// Ranks come from flags, GORLHF_* or the innermost launcher; the
	// driver's address and the run id may also come from outer ones.
	ranks := []source{fromFlags(flags), fromGorlhf(lookup)}
	kind := EnvNone
	if len(launchers) > 0 {
		kind = launchers[0].kind
		ranks = append(ranks, launchers[0])
	}
	addrs := append(slices.Clone(ranks), launchers...)
	var chosen [numFields]setting
	for f := range numFields {
		layers := ranks
		if f >= fHost {
			layers = addrs
		}
		chosen[f] = firstOf(layers, f)
	}
	if kind != EnvNone && launchers[0].rankErr != nil && chosen[fRank].from == launchers[0].s[fRank].from {
		return Identity{}, launchers[0].rankErr
	}
	id, err := resolve(chosen)
	if err != nil {
		return Identity{}, err
	}
	id.Env = kind
	return id, nil
}

// firstOf is the first layer's setting of f that is set.
func firstOf(layers []source, f field) setting {
	for _, l := range layers {
		if l.s[f].set() {
			return l.s[f]
		}
	}
	return setting{}
}

// resolve turns the chosen settings into an Identity and checks it.
func resolve(c [numFields]setting) (Identity, error) {
	id := Identity{From: map[string]string{}}
	for f := range numFields {
		id.From[fieldKeys[f]] = "default"
		if c[f].set() {
			id.From[fieldKeys[f]] = c[f].from
		}
	}
	switch {
	case c[fRank].set() && !c[fWorld].set():
		return id, fmt.Errorf("launch: %s=%q gives the rank but nothing gives the world size (set %s or --world_size)", c[fRank].from, c[fRank].val, VarWorldSize)
	case c[fWorld].set() && !c[fRank].set():
		return id, fmt.Errorf("launch: %s=%q gives the world size but nothing gives the rank (set %s or --rank)", c[fWorld].from, c[fWorld].val, VarRank)
	}
	var err error
	ints := []struct {
		f   field
		dst *int
		def int
		min int
	}{{fRank, &id.Rank, 0, 0}, {fWorld, &id.WorldSize, 1, 1}, {fLocal, &id.LocalRank, 0, 0}, {fNode, &id.NodeRank, 0, 0}, {fPort, &id.DriverPort, DefaultDriverPort, 1}}
	for _, n := range ints {
		if *n.dst, err = intField(c[n.f], n.def, n.min); err != nil {
			return id, err
		}
	}
	if id.Rank >= id.WorldSize {
		return id, fmt.Errorf("launch: rank %d (%s) is not below the world size %d (%s)", id.Rank, id.From["rank"], id.WorldSize, id.From["world_size"])
	}
	if id.DriverPort > 65535 {
		return id, fmt.Errorf("launch: %s=%q gives driver port %d, want 1-65535", c[fPort].from, c[fPort].val, id.DriverPort)
	}
	if id.DriverHost, err = c[fHost].value(); err != nil {
		return id, err
	}
	if id.DriverHost == "" {
		if id.NodeRank > 0 {
			return id, fmt.Errorf("launch: node rank %d (%s): this process is not on the driver's host and nothing says where the driver is (set %s, or --driver_addr)", id.NodeRank, id.From["node_rank"], VarDriverAddr)
		}
		id.DriverHost = "127.0.0.1"
	}
	id.RunID = c[fRunID].val
	return id, nil
}

// intField parses a whole-number setting (def when unset) and checks it
// is at least min.
func intField(s setting, def, min int) (int, error) {
	if !s.set() {
		return def, nil
	}
	v, err := s.value()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("launch: %s=%q: not a whole number", s.from, s.val)
	}
	if n < min {
		return 0, fmt.Errorf("launch: %s=%q: must be at least %d", s.from, s.val, min)
	}
	return n, nil
}

// fromFlags is the command-line layer.
func fromFlags(f Flags) source {
	var s source
	flagSetting := func(dst *setting, name, v string) {
		if v != "" {
			*dst = setting{val: v, from: "--" + name}
		}
	}
	flagSetting(&s.s[fRank], "rank", f.Rank)
	flagSetting(&s.s[fWorld], "world_size", f.WorldSize)
	flagSetting(&s.s[fLocal], "local_rank", f.LocalRank)
	flagSetting(&s.s[fNode], "node_rank", f.NodeRank)
	flagSetting(&s.s[fRunID], "run_id", f.RunID)
	if f.DriverAddr != "" {
		s.s[fHost], s.s[fPort] = splitAddr(f.DriverAddr, "--driver_addr")
	}
	return s
}

// fromGorlhf is the GORLHF_* layer.
func fromGorlhf(lookup LookupFunc) source {
	var s source
	s.s[fRank] = env(lookup, VarRank)
	s.s[fWorld] = env(lookup, VarWorldSize)
	s.s[fLocal] = env(lookup, VarLocalRank)
	s.s[fNode] = env(lookup, VarNodeRank)
	s.s[fRunID] = env(lookup, VarRunID)
	if a := env(lookup, VarDriverAddr); a.set() {
		s.s[fHost], s.s[fPort] = splitAddr(a.val, a.from)
	}
	return s
}

// splitAddr splits host:port (or a bare host, IPv6 included) into two
// settings from the same origin; the port is unset when absent.
func splitAddr(addr, from string) (host, port setting) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil { // no port: a bare host name or address
		h, p = strings.Trim(addr, "[]"), ""
	}
	host = setting{val: h, from: from}
	if p != "" {
		port = setting{val: p, from: from}
	}
	return host, port
}

// env is the setting of one variable; unset (and empty) variables give
// an unset setting.
func env(lookup LookupFunc, key string) setting {
	v, ok := lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return setting{}
	}
	return setting{val: v, from: key}
}
