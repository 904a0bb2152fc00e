package remote

import (
	"context"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// route is one method a server answers: it decodes the request, calls
// the role and encodes the result.
type route struct {
	m      method
	handle func(ctx context.Context, body []byte) ([]byte, error)
}

// buildRoutes maps the path of every method of the hosted roles (and
// Hello) to its handler.
func (s *Server) buildRoutes(h Hosted) map[string]route {
	rs := map[string]route{}
	add := func(r Role, name string, f func(context.Context, []byte) ([]byte, error)) {
		m := method{r, name}
		rs[m.path()] = route{m, f}
	}
	add("", methodHello, unary(func(context.Context, none) (Info, error) { return s.info, nil }))
	plane := s.cfg.Weights
	if a := h.Actor; a != nil {
		g := newGate()
		add(RoleActor, "LogProbs", g.wrap(unary(a.LogProbs)))
		add(RoleActor, "TrainStep", g.wrap(unary(a.TrainStep)))
		add(RoleActor, "Weights", g.wrap(unary(publishWeights(plane, a))))
		addCheckpointer(add, RoleActor, a, g)
	}
	if c := h.Critic; c != nil {
		g := newGate()
		add(RoleCritic, "Values", g.wrap(unary(c.Values)))
		add(RoleCritic, "TrainStep", g.wrap(unary(c.TrainStep)))
		addCheckpointer(add, RoleCritic, c, g)
	}
	if r := h.Reference; r != nil {
		add(RoleReference, "LogProbs", unary(r.LogProbs))
	}
	if r := h.Reward; r != nil {
		add(RoleReward, "Score", unary(r.Score))
	}
	if r := h.Rollout; r != nil {
		add(RoleRollout, "Generate", unary(r.Generate))
		add(RoleRollout, "LoadWeights", unary(loadWeights(plane, r)))
	}
	return rs
}

// addCheckpointer routes Save, Load and Export of a trainable role.
func addCheckpointer(add func(Role, string, func(context.Context, []byte) ([]byte, error)), r Role, c role.Checkpointer, g gate) {
	add(r, "Save", g.wrap(unary(c.Save)))
	add(r, "Load", g.wrap(unary(c.Load)))
	add(r, "Export", g.wrap(unary(func(ctx context.Context, req role.ExportRequest) (none, error) {
		return none{}, c.Export(ctx, req)
	})))
}

// unary adapts a typed role method to bytes in, bytes out.
func unary[Req, Res any](f func(context.Context, Req) (Res, error)) func(context.Context, []byte) ([]byte, error) {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		var req Req
		if err := wire.Unmarshal(body, &req); err != nil {
			return nil, failf(CodeInvalidArgument, "bad request: %v", err)
		}
		res, err := f(ctx, req)
		if err != nil {
			return nil, err
		}
		out, err := wire.Marshal(res)
		if err != nil {
			return nil, failf(CodeInternal, "encode result: %v", err)
		}
		return out, nil
	}
}

// gate lets one call at a time through to a role that is not safe for
// concurrent use; a call waiting for it gives up when its context ends.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

func (g gate) wrap(f func(context.Context, []byte) ([]byte, error)) func(context.Context, []byte) ([]byte, error) {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		select {
		case g <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-g }()
		return f(ctx, body)
	}
}
