module github.com/gorlhf/gorlhf/internal/role/remote/rpcbench

go 1.26.8

require (
	connectrpc.com/connect v1.21.1
	github.com/gorlhf/gorlhf v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.85.0
)

require (
	github.com/ebitengine/purego v0.11.3 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/gorlhf/gorlhf => ../../../..
