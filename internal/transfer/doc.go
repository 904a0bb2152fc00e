// Package transfer is the data plane that moves model weights between
// gorlhf processes: actor → rollout engine after every update, and
// checkpoints. Weights never travel inside RPC messages; a control message
// carries at most a URL and a version, and the bytes go here.
//
// The payload is a plain safetensors file (F32, tensors sorted by name,
// metadata "gorlhf.weights.version"), so any copy of it on disk is a
// loadable checkpoint. A Publisher keeps the latest snapshot of each name
// and serves it on GET /weights/{name}; the response headers carry the
// version, byte length and checksum (CRC32C by default) ahead of the body.
// A Client (fresh tensors) or a Receiver (in place) reads the body in one
// pass, counting and hashing it, and makes nothing visible until length
// and checksum match: truncated or damaged bytes are refused, and a
// Receiver's parameters stay as they were.
//
// Receivers pull rather than the actor pushing: one snapshot serves every
// rollout engine, each fetches when it is between batches, and the actor
// keeps no list of peers. On one host the publisher keeps the snapshot as a
// file in /dev/shm and answers a same-host client with the file's path
// instead of the bytes; the client verifies the file exactly as it would
// the stream. Every request carries the run's secret as a bearer token.
//
// See docs/TRANSFER.md for the wire format and the measured costs.
package transfer
