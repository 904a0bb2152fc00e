package jobset

// The subset of the JobSet, Job and Pod schemas that Render writes, in
// the field order of the output. Zero values marked omitempty are left
// out; the ones without it are always written.

type jobSet struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   meta       `yaml:"metadata"`
	Spec       jobSetSpec `yaml:"spec"`
}

type meta struct {
	Name      string            `yaml:"name,omitempty"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`
}

type jobSetSpec struct {
	Network        network         `yaml:"network"`
	Coordinator    coordinator     `yaml:"coordinator"`
	FailurePolicy  failurePolicy   `yaml:"failurePolicy"`
	SuccessPolicy  successPolicy   `yaml:"successPolicy"`
	ReplicatedJobs []replicatedJob `yaml:"replicatedJobs"`
}

type network struct {
	EnableDNSHostnames       bool `yaml:"enableDNSHostnames"`
	PublishNotReadyAddresses bool `yaml:"publishNotReadyAddresses"`
}

type coordinator struct {
	ReplicatedJob string `yaml:"replicatedJob"`
	JobIndex      int    `yaml:"jobIndex"`
	PodIndex      int    `yaml:"podIndex"`
}

type failurePolicy struct {
	MaxRestarts int `yaml:"maxRestarts"`
}

type successPolicy struct {
	Operator             string   `yaml:"operator"`
	TargetReplicatedJobs []string `yaml:"targetReplicatedJobs"`
}

type replicatedJob struct {
	Name      string      `yaml:"name"`
	Replicas  int         `yaml:"replicas"`
	DependsOn []dependsOn `yaml:"dependsOn,omitempty"`
	Template  jobTemplate `yaml:"template"`
}

type dependsOn struct {
	Name   string `yaml:"name"`
	Status string `yaml:"status"`
}

type jobTemplate struct {
	Spec jobSpec `yaml:"spec"`
}

type jobSpec struct {
	CompletionMode string      `yaml:"completionMode"`
	Parallelism    int         `yaml:"parallelism"`
	Completions    int         `yaml:"completions"`
	BackoffLimit   int         `yaml:"backoffLimit"`
	Template       podTemplate `yaml:"template"`
}

type podTemplate struct {
	Metadata meta    `yaml:"metadata"`
	Spec     podSpec `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy string      `yaml:"restartPolicy"`
	Containers    []container `yaml:"containers"`
	Volumes       []volume    `yaml:"volumes,omitempty"`
}

type container struct {
	Name            string        `yaml:"name"`
	Image           string        `yaml:"image"`
	ImagePullPolicy string        `yaml:"imagePullPolicy,omitempty"`
	Args            []string      `yaml:"args"`
	Ports           []port        `yaml:"ports,omitempty"`
	Env             []envVar      `yaml:"env"`
	Resources       *podResources `yaml:"resources,omitempty"`
	VolumeMounts    []volumeMount `yaml:"volumeMounts,omitempty"`
}

type port struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type envVar struct {
	Name      string     `yaml:"name"`
	Value     string     `yaml:"value,omitempty"`
	ValueFrom *envSource `yaml:"valueFrom,omitempty"`
}

type envSource struct {
	FieldRef     *fieldRef     `yaml:"fieldRef,omitempty"`
	SecretKeyRef *secretKeyRef `yaml:"secretKeyRef,omitempty"`
}

type fieldRef struct {
	FieldPath string `yaml:"fieldPath"`
}

type secretKeyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type podResources struct {
	Requests map[string]string `yaml:"requests,omitempty"`
	Limits   map[string]string `yaml:"limits,omitempty"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type volume struct {
	Name                  string `yaml:"name"`
	PersistentVolumeClaim *pvc   `yaml:"persistentVolumeClaim,omitempty"`
}

type pvc struct {
	ClaimName string `yaml:"claimName"`
}
