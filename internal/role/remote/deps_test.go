package remote

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gorlhf/gorlhf/"

// TestImportGraph keeps the transport out of the core: the role
// interfaces, the in-process roles and the PPO driver must build without
// an RPC library (connect-go and grpc-go were the candidates; see the
// package documentation), and the role layer without this package.
func TestImportGraph(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{"internal/role", []string{"connectrpc.com/", "google.golang.org/grpc", module + "internal/role/remote"}},
		{"internal/role/inproc", []string{"connectrpc.com/", "google.golang.org/grpc", module + "internal/role/remote"}},
		{"internal/trainer/ppo", []string{"connectrpc.com/", "google.golang.org/grpc"}},
	} {
		out, err := exec.Command(goTool, "list", "-deps", module+c.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, module+c.pkg) || !slices.Contains(deps, "context") {
			t.Fatalf("go list -deps %s printed %d packages, not its own graph", c.pkg, len(deps))
		}
		for _, d := range deps {
			for _, f := range c.forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s", c.pkg, d)
				}
			}
		}
	}
}
