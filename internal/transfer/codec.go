package transfer

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Weights is a versioned parameter set: tensors under their Hugging Face
// names (package placement converts it to and from role.Weights, whose
// parameters are plain named values).
type Weights struct {
	// Version is the publish count (the initial policy is 0).
	Version int64
	// Params are the tensors under their Hugging Face names.
	Params nn.Params
}

// versionKey is the safetensors metadata entry holding the version, so a
// payload saved to disk still says what it is.
const versionKey = "gorlhf.weights.version"

// Encode writes ps as one safetensors file (F32, tensors sorted by name,
// metadata {"format": "pt", versionKey: version}) to w and returns the
// byte count. It streams: only the header and a small buffer are held.
func Encode(w io.Writer, version int64, ps nn.Params) (int64, error) {
	if version < 0 {
		return 0, fmt.Errorf("transfer: encode: version %d is negative", version)
	}
	if err := ps.Validate(); err != nil {
		return 0, fmt.Errorf("transfer: encode version %d: %w", version, err)
	}
	ts := make([]safetensors.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = safetensors.Tensor{Name: p.Name, Shape: p.Tensor.Shape, Data: p.Tensor.Data}
	}
	meta := map[string]string{"format": "pt", versionKey: strconv.FormatInt(version, 10)}
	n, err := safetensors.Encode(w, ts, safetensors.F32, meta)
	if err != nil {
		return n, fmt.Errorf("transfer: encode version %d: %w", version, err)
	}
	return n, nil
}

// Marshal returns Encode's bytes.
func Marshal(version int64, ps nn.Params) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(encodedSizeHint(ps))
	if _, err := Encode(&b, version, ps); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodedSizeHint is a close upper estimate of Encode's output size: the
// data plus a generous header allowance.
func encodedSizeHint(ps nn.Params) int {
	n := 4096
	for _, p := range ps {
		n += 4*len(p.Tensor.Data) + len(p.Name) + 96
	}
	return n
}

// Decode reads Encode's bytes into fresh tensors, in the payload's order
// (sorted by name).
func Decode(data []byte) (Weights, error) {
	sr, version, err := openPayload(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return Weights{}, fmt.Errorf("transfer: decode: %w", err)
	}
	ps, err := readFresh(sr)
	if err != nil {
		return Weights{}, fmt.Errorf("transfer: decode version %d: %w", version, err)
	}
	return Weights{Version: version, Params: ps}, nil
}

// DecodeInto copies Encode's bytes into ps in place and returns the
// version. The whole payload is validated first (header, every name and
// shape against ps), so on error ps is unchanged. It does not verify a
// checksum: bytes from the network go through a Receiver.
func DecodeInto(data []byte, ps nn.Params) (int64, error) {
	sr, version, err := openPayload(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return 0, fmt.Errorf("transfer: decode: %w", err)
	}
	if err := checkTargets(sr, ps); err != nil {
		return 0, fmt.Errorf("transfer: decode version %d: %w", version, err)
	}
	// The header's byte ranges tile len(data) exactly, so reading from
	// memory cannot fail past this point.
	if err := readInto(sr, ps); err != nil {
		return 0, fmt.Errorf("transfer: decode version %d: %w", version, err)
	}
	return version, nil
}

// openPayload reads and checks a payload's header and returns its version.
func openPayload(r io.Reader, size int64) (*safetensors.Reader, int64, error) {
	sr, err := safetensors.NewReader(r, size)
	if err != nil {
		return nil, 0, err
	}
	raw, ok := sr.Metadata()[versionKey]
	if !ok {
		return nil, 0, fmt.Errorf("payload has no %q metadata", versionKey)
	}
	version, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || version < 0 {
		return nil, 0, fmt.Errorf("payload metadata %s=%q is not a version", versionKey, raw)
	}
	return sr, version, nil
}

// checkTargets requires the payload to hold exactly ps's names, each F32
// with ps's shape. Errors name the tensor.
func checkTargets(sr *safetensors.Reader, ps nn.Params) error {
	names := sr.Names()
	if err := ps.Validate(); err != nil {
		return err
	}
	want := make(map[string]*tensor.Tensor, len(ps))
	for _, p := range ps {
		want[p.Name] = p.Tensor
	}
	for _, name := range names {
		t, ok := want[name]
		if !ok {
			return fmt.Errorf("tensor %q is in the payload but not in the destination", name)
		}
		info, _ := sr.Info(name)
		if info.DType != safetensors.F32 {
			return fmt.Errorf("tensor %q has dtype %s, want F32", name, info.DType)
		}
		if !slices.Equal(info.Shape, t.Shape) {
			return fmt.Errorf("tensor %q has shape %v in the payload, %v in the destination", name, info.Shape, t.Shape)
		}
		delete(want, name)
	}
	for _, p := range ps {
		if _, missing := want[p.Name]; missing {
			return fmt.Errorf("tensor %q is missing from the payload", p.Name)
		}
	}
	return nil
}

// readInto reads every tensor into ps's tensor of the same name (checked
// by checkTargets).
func readInto(sr *safetensors.Reader, ps nn.Params) error {
	for _, name := range sr.Names() {
		if err := sr.ReadFloat32(name, ps.Find(name).Data); err != nil {
			return err
		}
	}
	return nil
}

// readFresh allocates a tensor per payload entry and reads it.
func readFresh(sr *safetensors.Reader) (nn.Params, error) {
	names := sr.Names()
	ps := make(nn.Params, len(names))
	for i, name := range names {
		info, _ := sr.Info(name)
		if info.DType != safetensors.F32 {
			return nil, fmt.Errorf("tensor %q has dtype %s, want F32", name, info.DType)
		}
		ps[i] = nn.Param{Name: name, Tensor: tensor.New(info.Shape...)}
	}
	for _, p := range ps {
		if err := sr.ReadFloat32(p.Name, p.Tensor.Data); err != nil {
			return nil, err
		}
	}
	return ps, nil
}
