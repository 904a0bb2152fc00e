// Package jobset renders a placement plan as one Kubernetes JobSet
// (jobset.x-k8s.io/v1alpha2, JobSet v0.8.2): a driver replicatedJob and
// one replicatedJob per placement group, one single-pod Job per rank.
//
// Every pod gets the GORLHF_* variables of the environment contract
// (package launch): its rank is the JobSet's job-global-index annotation,
// which JobSet numbers through the replicatedJobs in order, so it equals
// the plan's global rank; the driver's address is its stable DNS name
// <jobset>-driver-0-0.<jobset>; the run secret comes from a Kubernetes
// Secret the user creates (never from the manifest, which may be stored
// or printed). The YAML is written from plain structs, not Kubernetes Go
// types, in a fixed field order.
package jobset

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorlhf/gorlhf/internal/launch"
	"go.yaml.in/yaml/v3"
)

// APIVersion is the JobSet API the manifests use.
const APIVersion = "jobset.x-k8s.io/v1alpha2"

// globalIndexAnnotation is the pod annotation JobSet sets to the Job's
// index across the whole JobSet.
const globalIndexAnnotation = "jobset.sigs.k8s.io/job-global-index"

// Resources are one pod's requests: CPU and memory as Kubernetes
// quantities ("4", "500m", "16Gi"), GPUs as a count of nvidia.com/gpu.
// Empty fields request nothing.
type Resources struct {
	CPU    string
	Memory string // requested and also the limit
	GPUs   int
}

// Config is what the manifest needs besides the plan. Start from
// DefaultConfig.
type Config struct {
	// Name is the JobSet's name, a DNS-1035 label; it is also the
	// headless Service's name (the pods' DNS subdomain) and the run id.
	Name string
	// Namespace is written into the metadata; "" leaves it to kubectl.
	Namespace string
	// Image holds the gorlhf binary as its entrypoint (see Dockerfile).
	Image string
	// ImagePullPolicy is Always, IfNotPresent or Never; "" = cluster default.
	ImagePullPolicy string
	// DriverPort is the port the driver listens on.
	DriverPort int
	// SecretName is the Secret holding the run secret under SecretKey;
	// default <Name>-secret and "secret".
	SecretName, SecretKey string
	// DriverArgs and WorkerArgs follow the image's entrypoint (gorlhf)
	// in the driver's and in every worker's container.
	DriverArgs, WorkerArgs []string
	// Driver and Worker are the pods' resources.
	Driver, Worker Resources
	// Volume, when set, is a PersistentVolumeClaim mounted at MountPath
	// (default /data) in every pod, for the run folder and checkpoints.
	Volume, MountPath string
}

// DefaultConfig is a JobSet named gorlhf on the default driver port.
func DefaultConfig() Config {
	return Config{Name: "gorlhf", DriverPort: launch.DefaultDriverPort, SecretKey: "secret", MountPath: "/data"}
}

var (
	dns1035  = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	quantity = regexp.MustCompile(`^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`) // Kubernetes' quantity pattern
)

// Validate checks the names, image, port and quantities.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("jobset: "+format, args...)) }
	if !dns1035.MatchString(c.Name) {
		add("name %q: want lower-case letters, digits and '-', starting with a letter", c.Name)
	}
	if c.Namespace != "" && !dns1035.MatchString(c.Namespace) {
		add("namespace %q: want lower-case letters, digits and '-'", c.Namespace)
	}
	if c.Image == "" {
		add("an image is required (--image)")
	}
	if c.DriverPort < 1 || c.DriverPort > 65535 {
		add("driver port %d: want 1-65535", c.DriverPort)
	}
	switch c.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		add("image pull policy %q: want Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	if c.Volume != "" && !strings.HasPrefix(c.MountPath, "/") {
		add("mount path %q must be absolute", c.MountPath)
	}
	for _, r := range []struct {
		who string
		res Resources
	}{{"driver", c.Driver}, {"worker", c.Worker}} {
		for _, q := range [][2]string{{"cpu", r.res.CPU}, {"memory", r.res.Memory}} {
			if q[1] != "" && !quantity.MatchString(q[1]) {
				add("%s %s %q is not a Kubernetes quantity (e.g. 4, 500m, 16Gi)", r.who, q[0], q[1])
			}
		}
		if r.res.GPUs < 0 {
			add("%s GPUs %d: want ≥ 0", r.who, r.res.GPUs)
		}
	}
	return errors.Join(errs...)
}

// secretName is SecretName or its default.
func (c Config) secretName() string {
	if c.SecretName != "" {
		return c.SecretName
	}
	return c.Name + "-secret"
}

// DriverHost is the driver pod's DNS name within the namespace.
func (c Config) DriverHost() string {
	return fmt.Sprintf("%s-%s-0-0.%s", c.Name, launch.DriverGroup, c.Name)
}

// Render writes the JobSet for a plan of the k8s launcher, preceded by
// comments with the placement table and the command that creates the
// Secret.
func Render(p launch.Plan, c Config) ([]byte, error) {
	if p.Launcher != launch.K8s {
		return nil, fmt.Errorf("jobset: the plan is for --launcher %s, not k8s", p.Launcher)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkNames(p, c); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for line := range strings.Lines(p.String()) {
		b.WriteString("# " + line)
	}
	fmt.Fprintf(&b, "# Create the run secret first (the manifest only refers to it):\n")
	fmt.Fprintf(&b, "#   kubectl create secret generic %s%s --from-literal=%s=$(head -c 32 /dev/urandom | base64)\n",
		c.secretName(), nsFlag(c.Namespace), c.SecretKey)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(build(p, c)); err != nil {
		return nil, fmt.Errorf("jobset: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("jobset: encode: %w", err)
	}
	return b.Bytes(), nil
}

func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return " -n " + ns
}

// checkNames applies JobSet's own rule: the longest generated pod name
// (<jobset>-<group>-<job>-<pod> plus a 5-character suffix) must be a
// DNS-1035 label of at most 63 characters.
func checkNames(p launch.Plan, c Config) error {
	longest := ""
	for _, g := range p.Groups {
		if pod := fmt.Sprintf("%s-%s-%d-0-abcde", c.Name, g.Name, len(g.Ranks)-1); len(pod) > len(longest) {
			longest = pod
		}
	}
	if len(longest) > 63 {
		return fmt.Errorf("jobset: name %q is too long: pod names such as %s would exceed 63 characters", c.Name, longest)
	}
	return nil
}

// build lays out the JobSet document.
func build(p launch.Plan, c Config) jobSet {
	js := jobSet{
		APIVersion: APIVersion,
		Kind:       "JobSet",
		Metadata:   meta{Name: c.Name, Namespace: c.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "gorlhf"}},
		Spec: jobSetSpec{
			Network:       network{EnableDNSHostnames: true, PublishNotReadyAddresses: true},
			Coordinator:   coordinator{ReplicatedJob: launch.DriverGroup},
			FailurePolicy: failurePolicy{MaxRestarts: 0},
			SuccessPolicy: successPolicy{Operator: "All", TargetReplicatedJobs: []string{launch.DriverGroup}},
		},
	}
	for _, g := range p.Groups {
		js.Spec.ReplicatedJobs = append(js.Spec.ReplicatedJobs, replicated(p, c, g))
	}
	return js
}

// replicated is one group's replicatedJob: a single-pod Indexed Job per
// rank. Workers wait for the driver's Job to be ready.
func replicated(p launch.Plan, c Config, g launch.Group) replicatedJob {
	driver := g.Name == launch.DriverGroup
	args, res := c.WorkerArgs, c.Worker
	if driver {
		args, res = c.DriverArgs, c.Driver
	}
	ctr := container{
		Name:            "gorlhf",
		Image:           c.Image,
		ImagePullPolicy: c.ImagePullPolicy,
		Args:            args,
		Env:             podEnv(p, c),
		Resources:       resources(res),
	}
	if driver {
		ctr.Ports = []port{{Name: "driver", ContainerPort: c.DriverPort}}
	}
	pod := podSpec{RestartPolicy: "Never", Containers: []container{ctr}}
	if c.Volume != "" {
		pod.Containers[0].VolumeMounts = []volumeMount{{Name: "data", MountPath: c.MountPath}}
		pod.Volumes = []volume{{Name: "data", PersistentVolumeClaim: &pvc{ClaimName: c.Volume}}}
	}
	rj := replicatedJob{
		Name:     g.Name,
		Replicas: len(g.Ranks),
		Template: jobTemplate{Spec: jobSpec{
			CompletionMode: "Indexed", Parallelism: 1, Completions: 1, BackoffLimit: 0,
			Template: podTemplate{
				Metadata: meta{Labels: map[string]string{"app.kubernetes.io/name": "gorlhf"}},
				Spec:     pod,
			},
		}},
	}
	if !driver {
		rj.DependsOn = []dependsOn{{Name: launch.DriverGroup, Status: "Ready"}}
	}
	return rj
}

// podEnv is the environment contract every pod gets.
func podEnv(p launch.Plan, c Config) []envVar {
	return []envVar{
		{Name: launch.VarRank, ValueFrom: &envSource{FieldRef: &fieldRef{FieldPath: "metadata.annotations['" + globalIndexAnnotation + "']"}}},
		{Name: launch.VarWorldSize, Value: strconv.Itoa(p.WorldSize)},
		{Name: launch.VarDriverAddr, Value: net.JoinHostPort(c.DriverHost(), strconv.Itoa(c.DriverPort))},
		{Name: launch.VarRunID, Value: c.Name},
		{Name: launch.VarRunSecret, ValueFrom: &envSource{SecretKeyRef: &secretKeyRef{Name: c.secretName(), Key: c.SecretKey}}},
	}
}

func resources(r Resources) *podResources {
	out := podResources{Requests: map[string]string{}, Limits: map[string]string{}}
	if r.CPU != "" {
		out.Requests["cpu"] = r.CPU
	}
	if r.Memory != "" {
		out.Requests["memory"] = r.Memory
		out.Limits["memory"] = r.Memory
	}
	if r.GPUs > 0 {
		out.Limits["nvidia.com/gpu"] = strconv.Itoa(r.GPUs)
	}
	if len(out.Requests) == 0 && len(out.Limits) == 0 {
		return nil
	}
	return &out
}
