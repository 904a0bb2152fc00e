// Package remote lets the RL roles live in other processes: a worker
// serves any set of role implementations (NewServer with a Hosted), and
// the driver reaches them through clients that implement the same role
// interfaces (Dial, then Conn.Hosted), so trainer/ppo cannot tell a
// remote actor from an in-process one. One worker may host several roles
// (co-location: the actor and the reference, say).
//
// # Protocol
//
// Every call is an HTTP/1.1 POST to /gorlhf.role.v1/<role>/<Method> (the
// role interfaces' method names; the handshake is /gorlhf.role.v1/Hello)
// whose body is the request message in the wire encoding (package wire:
// compact binary, floats as their IEEE bits, so results come back bit for
// bit). A 200 reply carries the result; any other status an error body
// with a Code (after gRPC's codes: unauthenticated 401, failed_precondition
// 412, not_found 404, …) and the worker's error text. Each request carries
//
//	Authorization: Bearer <run secret>
//	Gorlhf-Version, Gorlhf-Config-Digest, Gorlhf-Wire-Schema
//	Gorlhf-Timeout-Ms   what is left of the driver's deadline
//
// # Security
//
// The run secret (NewSecret; the driver makes one, the launcher hands it
// to the workers) is compared in constant time (both sides hashed first).
// A call without it is refused before anything else is read and learns
// nothing about the worker. The Secret type prints and logs as
// "[redacted]"; neither side ever writes it to a log or an error. A
// server listens only on the host:port it is given, and the host part is
// required: every interface must be asked for by name (0.0.0.0).
//
// # Handshake
//
// Dial sends Hello until the worker answers (it may still be starting:
// exponential back-off from Config.DialBackoff, for at most
// Config.DialTimeout, then an error naming the roles, the address and
// the attempts). Every call, Hello included, carries the driver's gorlhf
// version, its config digest and the fingerprint of the wire types; a
// worker with other values refuses with both sides named. Hello answers
// Info: the roles hosted, rank, host and pid. Dial also fails when the
// worker does not host every role in Config.Roles. A refusal is final,
// not retried.
//
// # Failures
//
// A failed call is an *Error whose text is
// "remote: <role> <Method> on <addr>: <cause>"; when the role failed on
// the worker the cause is its error text unchanged. Each call has a
// timeout (Config.CallTimeout, per method in Config.MethodTimeouts; the
// defaults give TrainStep, Generate, checkpoints and weight transfers two
// hours). The deadline travels to the worker, and a driver that gives up
// or is cancelled hangs up, which cancels the call's context there. A
// worker that dies mid-call closes its connections and the call fails at
// once (CodeUnavailable); a machine that vanishes without a word is
// noticed by TCP keep-alive probes within about 20 s. The other way
// round, a driver that pings its workers (Conn.Ping) lets each one see it
// vanish (Server.Idle grows) and exit by itself. Actor and critic
// calls run one at a time on the worker (those roles are not safe for
// concurrent use); reference, reward and rollout calls may overlap, so
// the driver can run the experience phase's forward passes concurrently.
//
// # Weights
//
// Actor.Weights and Rollout.LoadWeights carry whole parameter sets, which
// never travel in an RPC message: a WeightsPlane publishes them (an HTTP
// data plane with version, length and checksum, or /dev/shm on one host)
// and the call carries only a WeightsRef. SyncWeights moves the actor's
// weights straight from the actor's worker to the rollout's. Checkpoints
// (Save, Load, Export) are written by the worker under paths on its own
// file system: the calls carry paths, never files.
//
// # Why plain net/http
//
// The transport was chosen by measuring one typical call on loopback: a
// LogProbs request of B = 32 sequences (32-token prompt, 256-token
// response) and its [32, 256] float32 result, 70 KB in the wire encoding
// (internal/role/remote/rpcbench, its own module so that the candidates
// that lost stay out of go.mod). Best wall time per call of 7 interleaved
// runs of 400 calls, best payload throughput, and median process CPU time
// per call (client and server together), on the 2-core development
// machine while other jobs kept its load average near 10:
//
//	candidate                  one caller        two callers  CPU/call  allocs
//	net/http + wire (remote)   0.84 ms  83 MB/s  0.85 ms      0.87 ms   384
//	net/http + wire (bare)     0.75 ms  94 MB/s  0.56 ms      0.81 ms   341
//	connect-go 1.21.1 + wire   0.81 ms  86 MB/s  0.55 ms      0.82 ms   446
//	grpc-go 1.85.0 + wire      0.80 ms  87 MB/s  0.78 ms      0.79 ms   424
//	net/http + encoding/gob    1.68 ms  42 MB/s  1.33 ms      1.48 ms   720
//
// The three transports are within the noise of each other (repeated
// runs reorder them), and far below the roles' own work: stories260K's
// LogProbs of that batch takes about 2 s on the same machine. What
// separates them is everything else:
//
//   - net/http adds no dependency; connect-go brings the protobuf runtime
//     (+2.2 MB on a minimal static binary) and grpc-go its own HTTP/2
//     stack (+6.8 MB), a 4 MB message cap by default and flow-control
//     windows that throttle large messages (grpc-go#2400).
//   - With a custom codec neither library's interoperability remains (no
//     .proto), while error codes, deadline propagation, authentication
//     and the handshake take a few hundred lines here, on the same
//     net/http stack as the data plane, serve and the reward servers
//     (HTTP/1.1 passes any proxy; curl can send a Hello).
//   - The codec matters more than the transport: encoding/gob spends twice
//     the CPU and allocations (and loses float32 signalling-NaN bits and
//     nil-versus-empty slices); the wire encoding is exact.
package remote
