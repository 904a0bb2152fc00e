#!/usr/bin/env bash
# Offline schema validation of the JobSets `gorlhf launch k8s` renders.
#
# Usage: tools/ci/jobset-validate.sh [manifest.yaml ...]
#   With no arguments it renders a set of placements (every co-location,
#   GAE and GRPO) with the binary built from this checkout, adds the golden
#   files of internal/launch/jobset, validates them all, and checks that a
#   broken manifest is rejected (so a pass means something).
#
# What it checks: the JobSet v0.8.2 CRD's openAPIV3Schema (from the pinned
# sigs.k8s.io/jobset module) through kubeconform v0.8.0 (pinned), both
# fetched through the Go module proxy. What it cannot check here: core
# schemas (Pod, Job), CEL rules and admission webhooks; no cluster exists
# on CI. Golden tests cover the rendered text.
set -euo pipefail
KUBECONFORM_VERSION=v0.8.0
JOBSET_VERSION=v0.8.2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/schemas" "$W/bin" "$W/manifests"
cd "$ROOT"

# 1) Tools, pinned, through the module proxy.
GOBIN="$W/bin" GOFLAGS=-p=1 go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
go mod download "sigs.k8s.io/jobset@$JOBSET_VERSION" # the exact version (the proxy refuses to list them)
CRD="$(go env GOMODCACHE)/sigs.k8s.io/jobset@$JOBSET_VERSION/config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml"

# 2) CRD → one JSON schema per served version, named as kubeconform's
#    -schema-location template below expects. Converted by a few lines of Go
#    with this module's YAML package (no Python needed).
cat > "$W/crd2schema.go" <<'GO'
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var crd struct {
		Spec struct {
			Group    string
			Names    struct{ Kind string }
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		panic(err)
	}
	for _, v := range crd.Spec.Versions {
		out, err := json.Marshal(v.Schema.OpenAPIV3Schema)
		if err != nil {
			panic(err)
		}
		// kubeconform lower-cases the kind in its template
		name := fmt.Sprintf("%s-%s-%s.json", strings.ToLower(crd.Spec.Names.Kind), crd.Spec.Group, v.Name)
		if err := os.WriteFile(filepath.Join(os.Args[2], name), out, 0o644); err != nil {
			panic(err)
		}
		fmt.Println("schema", name)
	}
}
GO
go run "$W/crd2schema.go" "$CRD" "$W/schemas"

validate() {
  "$W/bin/kubeconform" -strict -summary \
    -schema-location "$W/schemas/{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json" "$@"
}

# 3) Explicit manifests: validate them and stop.
if [ $# -gt 0 ]; then
  validate "$@"
  exit 0
fi

# 4) Render placements with this checkout's binary.
CGO_ENABLED=0 go build -o "$W/bin/gorlhf" ./cmd/gorlhf
TRAIN=(train ppo --data.prompt_dataset=/data/prompts.jsonl --reward.rule=length)
GRPO=(--algo.advantage.estimator=group_norm --rollout.n_samples_per_prompt=4)
render() { # name, launch flags..., --, train flags...
  local name=$1; shift
  "$W/bin/gorlhf" launch k8s --image=ghcr.io/gorlhf/gorlhf:ci --name="$name" "$@" >"$W/manifests/$name.yaml"
}
render ppo-separate -- "${TRAIN[@]}"
render ppo-actor-ref --namespace=rl -- "${TRAIN[@]}" --train.colocate_actor_ref
render ppo-critic-reward -- "${TRAIN[@]}" --reward.model_name_or_path=/data/rm --train.colocate_critic_reward
render ppo-both -- "${TRAIN[@]}" --reward.model_name_or_path=/data/rm --train.colocate_actor_ref --train.colocate_critic_reward
render ppo-all --cpu=8 --memory=32Gi --gpus=1 --driver_cpu=500m --driver_memory=2Gi --volume=rlhf-data -- "${TRAIN[@]}" --train.colocate_all
render grpo-2x2 --image_pull_policy=IfNotPresent -- "${TRAIN[@]}" "${GRPO[@]}" \
  --actor.num_nodes=2 --actor.num_workers_per_node=2 --ref.num_nodes=2 --ref.num_workers_per_node=2 --train.colocate_actor_ref --rollout.num_engines=4
render grpo-all -- "${TRAIN[@]}" "${GRPO[@]}" --train.colocate_all
cp internal/launch/jobset/testdata/*.yaml "$W/manifests/"
validate "$W"/manifests/*.yaml

# 5) The schema must reject a broken manifest (replicas must be an integer).
sed 's/^\(      replicas:\) 1$/\1 "one"/' "$W/manifests/ppo-separate.yaml" >"$W/broken.yaml"
if validate "$W/broken.yaml" >"$W/broken.out" 2>&1; then
  echo "jobset-validate: a manifest with replicas: \"one\" passed validation" >&2
  cat "$W/broken.out" >&2
  exit 1
fi
echo "jobset-validate: broken manifest rejected as expected:"
grep -m1 -i 'replicas' "$W/broken.out" || cat "$W/broken.out"
