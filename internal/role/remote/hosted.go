package remote

import (
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/role"
)

// Role names one of the five RL roles on the wire.
type Role string

// The roles, named as in package role.
const (
	RoleActor     Role = "actor"
	RoleCritic    Role = "critic"
	RoleReference Role = "reference"
	RoleReward    Role = "reward"
	RoleRollout   Role = "rollout"
)

// allRoles lists the roles in a fixed order (the order of Hosted's fields).
var allRoles = []Role{RoleActor, RoleCritic, RoleReference, RoleReward, RoleRollout}

// String implements flag.Value.
func (r Role) String() string { return string(r) }

// Set implements flag.Value.
func (r *Role) Set(s string) error {
	for _, x := range allRoles {
		if string(x) == s {
			*r = x
			return nil
		}
	}
	return fmt.Errorf("remote: unknown role %q (want one of %s)", s, joinRoles(allRoles))
}

// joinRoles writes roles as "actor, reference" ("none" when empty).
func joinRoles(rs []Role) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Hosted is a set of roles in one process: what a Server exposes (nil
// fields are roles it does not host) and what a Conn reaches. Several
// set fields are co-location: one worker holding, say, the actor and the
// reference.
type Hosted struct {
	Actor     role.Actor
	Critic    role.Critic
	Reference role.Reference
	Reward    role.Reward
	Rollout   role.Rollout
}

// Roles lists the roles set, in the fixed order.
func (h Hosted) Roles() []Role {
	var out []Role
	for _, r := range allRoles {
		if h.has(r) {
			out = append(out, r)
		}
	}
	return out
}

func (h Hosted) has(r Role) bool {
	switch r {
	case RoleActor:
		return h.Actor != nil
	case RoleCritic:
		return h.Critic != nil
	case RoleReference:
		return h.Reference != nil
	case RoleReward:
		return h.Reward != nil
	case RoleRollout:
		return h.Rollout != nil
	}
	return false
}
