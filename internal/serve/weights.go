package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Weight updates, two protocols over one loader:
//
// SGLang's POST /update_weights_from_disk {"model_path", "weight_version",
// "abort_all_requests"} → {"success", "message", "weight_version"}.
//
// vLLM's weight-transfer routes (dev mode): POST
// /init_weight_transfer_engine {"init_info"}, /start_weight_update
// {"is_checkpoint_format"}, /update_weights {"update_info"} (any number
// of times), /finish_weight_update, GET /get_world_size. vLLM moves the
// bytes over NCCL (or CUDA IPC): the trainer broadcasts while the server
// receives inside /update_weights, and update_info lists the tensors'
// names, dtype_names and shapes. gorlhf serve has no NCCL; its backend is
// "disk": init_info {"backend": "disk"} (or {}), and each update_info
// names a safetensors file or folder in "model_path" (the tensors to take
// from it in "names", all of them when absent, with "shapes" checked when
// given). NCCL init_info (master_address, master_port, …) is refused with
// 501. /finish_weight_update loads everything staged as one version
// ("weight_version" in the last update_info or in the finish body, else
// the current version + 1).
//
// Either way the snapshot's tensors must name exactly the served model's
// parameters with the same shapes (a mismatch names the tensor and both
// shapes); on any failure the old weights stay served. Loading waits for
// the requests already generating (they finish on the old weights).

// updateFromDiskRequest is SGLang's UpdateWeightFromDiskReqInput (the
// fields gorlhf uses; the GPU-only ones are ignored).
type updateFromDiskRequest struct {
	ModelPath        string          `json:"model_path"`
	LoadFormat       *string         `json:"load_format"`
	AbortAllRequests bool            `json:"abort_all_requests"`
	WeightVersion    json.RawMessage `json:"weight_version"`
	FlushCache       *bool           `json:"flush_cache"`
	IsAsync          bool            `json:"is_async"`
	TorchEmptyCache  bool            `json:"torch_empty_cache"`
	KeepPause        bool            `json:"keep_pause"`
	RecaptureGraph   bool            `json:"recapture_cuda_graph"`
	TokenStep        int             `json:"token_step"`
}

// weightUpdate is the state of the vLLM-style update in progress.
type weightUpdate struct {
	mu      sync.Mutex
	backend string // "" until /init_weight_transfer_engine
	open    bool   // between start and finish
	staged  map[string]*tensor.Tensor
	version *int64
}

func (s *Server) updateFromDisk(w http.ResponseWriter, r *http.Request) {
	var req updateFromDiskRequest
	if !s.decode(w, r, &req) {
		return
	}
	fail := func(status int, err error) {
		writeJSON(w, status, map[string]any{"success": false, "message": err.Error(), "weight_version": s.eng.Stats().WeightVersion})
	}
	if req.LoadFormat != nil && *req.LoadFormat != "" && *req.LoadFormat != "safetensors" && *req.LoadFormat != "auto" {
		fail(http.StatusBadRequest, fmt.Errorf("load_format %q: only safetensors is served", *req.LoadFormat))
		return
	}
	version, err := s.nextVersion(req.WeightVersion)
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	ps, err := s.readSnapshot(req.ModelPath, nil, nil)
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	if req.AbortAllRequests {
		if err := s.gate.abortAll(r.Context()); err != nil {
			fail(http.StatusServiceUnavailable, err)
			return
		}
	}
	if status, err := s.load(r.Context(), ps, version); err != nil {
		fail(status, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "weight_version": version, "num_paused_requests": 0,
		"message": fmt.Sprintf("loaded %d tensors from %s as weight version %d", len(ps), req.ModelPath, version)})
}

// load swaps the engine's weights for ps as version (loadMu held); the
// status says who is at fault when it fails. ps's buffers are kept for
// the next snapshot read (the engine copies them).
func (s *Server) load(ctx context.Context, ps nn.Params, version int64) (int, error) {
	defer s.keep(ps)
	if err := s.eng.LoadWeights(ctx, generate.Weights{Params: ps, Version: version}); err != nil {
		if errors.Is(err, generate.ErrClosed) || ctx.Err() != nil {
			return http.StatusServiceUnavailable, fmt.Errorf("serve: load weight version %d: %w", version, err)
		}
		return http.StatusBadRequest, fmt.Errorf("serve: load weight version %d: %w (the served weights are unchanged)", version, err)
	}
	s.opt.Logger.Info("serve: weights loaded", "weight_version", version, "tensors", len(ps))
	return http.StatusOK, nil
}

// nextVersion reads a weight_version given as a number or a string of
// digits (SGLang sends strings); absent means the current version + 1.
func (s *Server) nextVersion(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return s.eng.Stats().WeightVersion + 1, nil
	}
	text := string(raw)
	var str string
	if json.Unmarshal(raw, &str) == nil {
		text = str
	}
	v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("weight_version: want an integer ≥ 1 (a number or a string of digits), got %s", raw)
	}
	return v, nil
}

// keep files ps's buffers for the next read (loadMu held): reading into
// memory already faulted in costs a fraction of fresh allocations.
func (s *Server) keep(ps nn.Params) {
	if s.spare == nil {
		s.spare = map[string][]float32{}
	}
	for _, p := range ps {
		s.spare[p.Name] = p.Tensor.Data
	}
}

// buffer returns a buffer of n floats for tensor name: the one kept from
// the last load when it fits, else a fresh one (loadMu held).
func (s *Server) buffer(name string, n int) []float32 {
	if b := s.spare[name]; len(b) == n {
		delete(s.spare, name)
		return b
	}
	return make([]float32, n)
}

// readSnapshot reads the tensors of a safetensors file or folder (a
// sharded one with its index) into float32 tensors: all of them, or
// those named (with shapes, when given, checked). loadMu is held.
func (s *Server) readSnapshot(path string, names []string, shapes [][]int) (nn.Params, error) {
	if path == "" {
		return nil, errors.New("model_path is required")
	}
	if shapes != nil && len(shapes) != len(names) {
		return nil, fmt.Errorf("%d shapes for %d names", len(shapes), len(names))
	}
	var ps nn.Params
	var err error
	if st, serr := os.Stat(path); serr == nil && st.Mode().IsRegular() && !strings.HasSuffix(path, ".json") {
		ps, err = s.readFile(path, st.Size(), names)
	} else {
		ps, err = readMapped(path, names)
	}
	if err != nil {
		return nil, fmt.Errorf("model_path %s: %w", path, err)
	}
	for i := range shapes {
		if !slices.Equal(shapes[i], ps[i].Tensor.Shape) {
			return nil, fmt.Errorf("model_path %s: tensor %s has shape %v, update_info says %v", path, names[i], ps[i].Tensor.Shape, shapes[i])
		}
	}
	return ps, nil
}

// readFile reads one safetensors file front to back with read calls (no
// mapping: its pages would each fault in), F32 data straight into the
// tensors. The tensors come in names' order, or the file's when names is
// nil.
func (s *Server) readFile(path string, size int64, names []string) (nn.Params, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sr, err := safetensors.NewReader(f, size)
	if err != nil {
		return nil, err
	}
	order := sr.Names()
	want := map[string]int{}
	for i, n := range names {
		want[n] = i
	}
	out := make(nn.Params, len(names))
	if names == nil {
		out = make(nn.Params, len(order))
	}
	for k, name := range order {
		info, _ := sr.Info(name)
		i, ok := want[name]
		if names == nil {
			i, ok = k, true
		}
		data := s.buffer(name, info.NumElements())
		if err := sr.ReadFloat32(name, data); err != nil {
			return nil, err
		}
		if ok {
			out[i] = nn.Param{Name: name, Tensor: &tensor.Tensor{Shape: info.Shape, Data: data}}
		}
	}
	for i, p := range out {
		if p.Tensor == nil {
			return nil, fmt.Errorf("no tensor %q", names[i])
		}
	}
	return out, nil
}

// readMapped reads a folder (or an index) through safetensors.Open.
func readMapped(path string, names []string) (nn.Params, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if names == nil {
		names = f.Names()
	}
	ps := make(nn.Params, 0, len(names))
	for _, name := range names {
		data, shape, err := f.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		ps = append(ps, nn.Param{Name: name, Tensor: &tensor.Tensor{Shape: shape, Data: data}})
	}
	return ps, nil
}

// vLLM-style weight transfer.

type initTransferRequest struct {
	InitInfo map[string]json.RawMessage `json:"init_info"`
}

func (s *Server) initWeightTransfer(w http.ResponseWriter, r *http.Request) {
	var req initTransferRequest
	if !s.decode(w, r, &req) {
		return
	}
	backend := "disk"
	for key, raw := range req.InitInfo {
		switch key {
		case "backend":
			if err := json.Unmarshal(raw, &backend); err != nil || backend != "disk" {
				badRequest(w, "init_info.backend", fmt.Errorf("gorlhf serve's weight-transfer backend is \"disk\", got %s", raw))
				return
			}
		case "master_address", "master_port", "rank_offset", "world_size":
			writeError(w, http.StatusNotImplemented, "invalid_request_error",
				"NCCL weight transfer needs a GPU server (vLLM); gorlhf serve's backend is \"disk\": init_info {\"backend\": \"disk\"}, then update_info {\"model_path\": …}", "")
			return
		default:
			badRequest(w, "init_info."+key, errors.New("unknown field"))
			return
		}
	}
	u := &s.update
	u.mu.Lock()
	u.backend, u.open, u.staged, u.version = backend, false, nil, nil
	u.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "backend": backend, "weight_version": s.eng.Stats().WeightVersion})
}

func (s *Server) startWeightUpdate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IsCheckpointFormat *bool `json:"is_checkpoint_format"`
	}
	if !s.decodeOptional(w, r, &req) {
		return
	}
	u := &s.update
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.backend == "" {
		writeError(w, http.StatusConflict, "invalid_request_error", "call /init_weight_transfer_engine first", "")
		return
	}
	// A start while an update is open begins again (a trainer that
	// restarted mid-update must not be locked out).
	u.open, u.staged, u.version = true, map[string]*tensor.Tensor{}, nil
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "weight_version": s.eng.Stats().WeightVersion})
}

// updateInfo is the "disk" backend's update_info.
type updateInfo struct {
	ModelPath     string          `json:"model_path"`
	Names         []string        `json:"names"`
	DTypeNames    []string        `json:"dtype_names"`
	Shapes        [][]int         `json:"shapes"`
	Packed        bool            `json:"packed"`
	WeightVersion json.RawMessage `json:"weight_version"`
}

func (s *Server) updateWeights(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UpdateInfo *updateInfo `json:"update_info"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.UpdateInfo == nil {
		badRequest(w, "update_info", errors.New("is required"))
		return
	}
	info := req.UpdateInfo
	if info.DTypeNames != nil && len(info.DTypeNames) != len(info.Names) {
		badRequest(w, "update_info.dtype_names", fmt.Errorf("%d dtype names for %d names", len(info.DTypeNames), len(info.Names)))
		return
	}
	u := &s.update
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.open {
		writeError(w, http.StatusConflict, "invalid_request_error", "call /start_weight_update first", "")
		return
	}
	if len(info.WeightVersion) > 0 {
		v, err := s.nextVersion(info.WeightVersion)
		if err != nil {
			badRequest(w, "update_info.weight_version", err)
			return
		}
		u.version = &v
	}
	s.loadMu.Lock()
	ps, err := s.readSnapshot(info.ModelPath, info.Names, info.Shapes)
	s.loadMu.Unlock()
	if err != nil {
		badRequest(w, "update_info", err)
		return
	}
	for _, p := range ps {
		u.staged[p.Name] = p.Tensor
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "staged_tensors": len(u.staged), "weight_version": s.eng.Stats().WeightVersion})
}

func (s *Server) finishWeightUpdate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		WeightVersion json.RawMessage `json:"weight_version"`
	}
	if !s.decodeOptional(w, r, &req) {
		return
	}
	u := &s.update
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.open {
		writeError(w, http.StatusConflict, "invalid_request_error", "call /start_weight_update first", "")
		return
	}
	version, err := s.nextVersion(req.WeightVersion)
	if err != nil {
		badRequest(w, "weight_version", err)
		return
	}
	if len(req.WeightVersion) == 0 && u.version != nil {
		version = *u.version
	}
	ps := make(nn.Params, 0, len(u.staged))
	for name, t := range u.staged {
		ps = append(ps, nn.Param{Name: name, Tensor: t})
	}
	slices.SortFunc(ps, func(a, b nn.Param) int { return strings.Compare(a.Name, b.Name) })
	u.open, u.staged, u.version = false, nil, nil
	s.loadMu.Lock()
	status, err := s.load(r.Context(), ps, version)
	s.loadMu.Unlock()
	if err != nil {
		writeError(w, status, "invalid_request_error", err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "weight_version": version})
}

func (s *Server) worldSize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"world_size": 1})
}
