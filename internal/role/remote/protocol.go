package remote

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/remote/wire"
)

// The protocol: every call is an HTTP/1.1 POST to /gorlhf.role.v1/<role>/<Method>
// (Hello: /gorlhf.role.v1/Hello) whose body is the request in the wire
// encoding. A 200 reply carries the result; any other status carries an
// errorBody. Each request sends the run secret and the handshake fields
// as headers.
const (
	pathPrefix     = "/gorlhf.role.v1/"
	contentType    = "application/x-gorlhf-wire"
	headerVersion  = "Gorlhf-Version"
	headerDigest   = "Gorlhf-Config-Digest"
	headerSchema   = "Gorlhf-Wire-Schema"
	headerTimeout  = "Gorlhf-Timeout-Ms" // what is left of the caller's deadline
	methodHello    = "Hello"
	bearerPrefix   = "Bearer "
	maxErrorLength = 64 << 10 // of an error message read back
)

// method is one RPC: a role's method, or Hello (role "").
type method struct {
	role Role
	name string
}

func (m method) path() string {
	if m.role == "" {
		return pathPrefix + m.name
	}
	return pathPrefix + string(m.role) + "/" + m.name
}

// methods lists each role's methods as they appear on the wire (they
// carry the role interfaces' names).
var methods = map[Role][]string{
	RoleActor:     {"LogProbs", "TrainStep", "Weights", "Save", "Load", "Export"},
	RoleCritic:    {"Values", "TrainStep", "Save", "Load", "Export"},
	RoleReference: {"LogProbs"},
	RoleReward:    {"Score"},
	RoleRollout:   {"Generate", "LoadWeights"},
}

// Methods returns every method name a call can have (the keys
// Config.MethodTimeouts accepts).
func Methods() []string {
	seen := map[string]bool{methodHello: true}
	out := []string{methodHello}
	for _, r := range allRoles {
		for _, m := range methods[r] {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// Hello is the handshake a driver sends when it connects (and its fields,
// as headers, with every later call).
type Hello struct {
	Version      string // gorlhf version
	ConfigDigest string // the run configuration's digest
	Schema       string // fingerprint of the wire types (see wire.Fingerprint)
}

// Info describes a worker: what Hello returns.
type Info struct {
	Version      string
	ConfigDigest string
	Schema       string
	Roles        []Role // hosted, in the fixed role order
	Rank         int
	Host         string
	PID          int
}

// String names the worker for error messages: "rank 2 on host n1 (pid 77)".
func (i Info) String() string {
	return fmt.Sprintf("rank %d on host %s (pid %d)", i.Rank, i.Host, i.PID)
}

// errorBody is the body of every non-200 reply.
type errorBody struct {
	Code    Code
	Message string
}

// weightsRequest asks the actor to publish its weights as a version.
type weightsRequest struct {
	Version int64
}

// none is the empty request or result (0 bytes on the wire).
type none struct{}

// schema returns the fingerprint of every type that crosses the wire, so
// that two builds which would decode each other's bytes differently
// refuse to talk even when they report the same version.
var schema = sync.OnceValues(func() (string, error) { return wire.Fingerprint(wireTypes...) })

// wireTypes are zero values of every type that crosses the wire.
var wireTypes = []any{
	Hello{}, Info{}, errorBody{}, weightsRequest{}, WeightsRef{}, none{},
	role.LogProbsRequest{}, role.LogProbsResult{},
	role.ValuesRequest{}, role.ValuesResult{},
	role.ActorStep{}, role.ActorStepResult{},
	role.CriticStep{}, role.CriticStepResult{},
	role.GenerateRequest{}, role.GenerateResult{},
	role.ScoreRequest{}, role.ScoreResult{},
	role.SaveRequest{}, role.SaveResult{},
	role.LoadRequest{}, role.LoadResult{},
	role.ExportRequest{},
}

// Code classifies a failed call (after gRPC's codes).
type Code string

const (
	CodeCanceled           Code = "canceled"            // the caller gave up
	CodeDeadlineExceeded   Code = "deadline_exceeded"   // the call ran past its timeout
	CodeInvalidArgument    Code = "invalid_argument"    // the request could not be decoded or is too large
	CodeNotFound           Code = "not_found"           // no such role or method on this worker
	CodeFailedPrecondition Code = "failed_precondition" // version, config digest or wire schema differ
	CodeUnauthenticated    Code = "unauthenticated"     // missing or wrong run secret
	CodeUnavailable        Code = "unavailable"         // worker unreachable, connection lost, shutting down
	CodeUnknown            Code = "unknown"             // the role returned an error
	CodeInternal           Code = "internal"            // a reply that breaks the protocol
)

// httpStatus is the reply status of a code.
func (c Code) httpStatus() int {
	switch c {
	case CodeCanceled:
		return 499 // client closed request (nginx)
	case CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// codeOfStatus guesses a code for a reply without an errorBody (a proxy's
// page, say).
func codeOfStatus(status int) Code {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return CodeUnauthenticated
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return CodeInvalidArgument
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return CodeUnavailable
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return CodeDeadlineExceeded
	}
	return CodeInternal
}
