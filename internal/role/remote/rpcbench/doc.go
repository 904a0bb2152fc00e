// Package rpcbench compares the RPC candidates for package remote on
// loopback: plain net/http, connect-go and grpc-go, each carrying a
// LogProbs call (B = 32 sequences, 288 tokens each, and its [32, 256]
// float32 result) in the wire encoding, plus net/http with encoding/gob
// for the codec. It is its own module so that the libraries that lost
// stay out of gorlhf's go.mod; run it with
//
//	cd internal/role/remote/rpcbench && go test -bench . -benchtime 3s
//
// The numbers and the choice are in package remote's documentation.
package rpcbench
