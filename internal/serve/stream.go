package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// streamFormat says how a stream's chunks look.
type streamFormat struct {
	id       string
	chat     bool
	usage    bool // a final chunk with token counts (stream_options.include_usage)
	logprobs bool
}

// promptEvent is an engine event tagged with its prompt.
type promptEvent struct {
	prompt int
	ev     generate.Event
}

// stream answers with server-sent events: one chunk per generated token
// (its text delta, possibly empty while a character or a possible stop
// string is incomplete), a last chunk per choice with its finish reason,
// then "data: [DONE]".
func (s *Server) stream(w http.ResponseWriter, r *http.Request, reqs []generate.Request, f *streamFormat) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "server_error", "streaming is not supported by this connection", "")
		return
	}
	merged, err := s.startStreams(r, reqs)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			b, _ = json.Marshal(map[string]any{"error": apiError{Message: err.Error(), Type: "server_error"}})
		}
		fmt.Fprintf(w, "data: %s\n\n", b)
		flusher.Flush()
	}
	n := reqs[0].Params.N
	trackers := map[int]*textTracker{}
	var use usage
	for _, rq := range reqs {
		use.PromptTokens += len(rq.Prompt)
	}
	for pe := range merged {
		if pe.ev.Err != nil {
			send(map[string]any{"error": apiError{Message: pe.ev.Err.Error(), Type: "server_error"}})
			go func() { // let the other streams' forwarders finish
				for range merged {
				}
			}()
			break
		}
		idx := pe.prompt*n + pe.ev.Index
		t := trackers[idx]
		if t == nil {
			t = s.newTracker(reqs[pe.prompt].Prompt, reqs[pe.prompt].Params.StopStrings, f.logprobs)
			trackers[idx] = t
			if f.chat {
				send(s.chunk(f, idx, &chatMessage{Role: "assistant", Content: new(string)}, "", nil))
			}
		}
		send(s.eventChunk(f, idx, t, &pe.ev))
		if pe.ev.Token >= 0 {
			use.CompletionTokens++
		}
	}
	if f.usage {
		use.TotalTokens = use.PromptTokens + use.CompletionTokens
		send(map[string]any{"id": f.id, "object": s.object(f), "created": time.Now().Unix(), "model": s.opt.ModelName,
			"choices": []any{}, "usage": use})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	flusher.Flush()
}

// startStreams submits every request and merges their events.
func (s *Server) startStreams(r *http.Request, reqs []generate.Request) (<-chan promptEvent, error) {
	merged := make(chan promptEvent)
	var wg sync.WaitGroup
	for i, rq := range reqs {
		events, err := s.eng.Stream(r.Context(), rq)
		if err != nil {
			return nil, engineError(i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range events {
				merged <- promptEvent{prompt: i, ev: ev}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(merged)
	}()
	return merged, nil
}

// eventChunk turns one engine event into a chunk: the text delta, the
// token's log-prob if asked, and the finish reason on the last one.
func (s *Server) eventChunk(f *streamFormat, idx int, t *textTracker, ev *generate.Event) any {
	var delta, reason string
	switch {
	case ev.Done:
		delta, reason = t.final(ev.Completion.Text), string(ev.Completion.FinishReason)
	case ev.Token >= 0:
		delta = t.add(ev.Token)
	}
	var lp any
	if f.logprobs && ev.Token >= 0 {
		c := &generate.Completion{Tokens: []int32{ev.Token}, RawLogProbs: []float32{ev.RawLogProb}}
		if ev.Top != nil {
			c.TopLogProbs = [][]generate.TokenLogProb{ev.Top}
		}
		if f.chat {
			lp = &chatLogprobs{Content: s.chatLogprobs(t.texts, c)}
		} else {
			lp = s.legacyLogprobs(t.texts, c)
		}
	}
	if f.chat {
		msg := &chatMessage{}
		if delta != "" {
			msg.Content = &delta
		}
		return s.chunk(f, idx, msg, reason, lp)
	}
	return s.chunk(f, idx, delta, reason, lp)
}

// chunk builds one streamed object; body is a delta message (chat) or text.
func (s *Server) chunk(f *streamFormat, idx int, body any, reason string, lp any) map[string]any {
	choice := map[string]any{"index": idx, "logprobs": lp, "finish_reason": nil}
	if reason != "" {
		choice["finish_reason"] = reason
	}
	if f.chat {
		choice["delta"] = body
	} else {
		choice["text"] = body
	}
	return map[string]any{"id": f.id, "object": s.object(f), "created": time.Now().Unix(), "model": s.opt.ModelName,
		"choices": []any{choice}}
}

func (s *Server) object(f *streamFormat) string {
	if f.chat {
		return "chat.completion.chunk"
	}
	return "text_completion"
}

// textTracker turns a growing list of token ids into text deltas that are
// never taken back: it decodes them after the prompt, as the engine does
// Completion.Text, and holds back an incomplete UTF-8 character (decoded
// as U+FFFD) and, when there are stop strings, the last len(stop)−1 bytes,
// which might be the start of a stop string the final text is cut at.
type textTracker struct {
	dec     tokenizer.Decoder
	prompt  []int
	ids     []int
	emitted int
	hold    int
	texts   *tokenTexts // the tokens' texts for logprobs; nil unless asked for
}

func (s *Server) newTracker(prompt []int32, stops []string, logprobs bool) *textTracker {
	t := &textTracker{dec: s.tok, prompt: toInts(prompt)}
	for _, st := range stops {
		t.hold = max(t.hold, len(st)-1)
	}
	if logprobs {
		t.texts = s.tokenTexts(prompt)
	}
	return t
}

// add appends a token and returns the newly stable text.
func (t *textTracker) add(id int32) string {
	t.ids = append(t.ids, int(id))
	text := tokenizer.DecodeContinuation(t.dec, t.prompt, t.ids)
	end := len(text) - t.hold
	for end > 0 && strings.HasSuffix(text[:end], "\uFFFD") {
		end -= len("\uFFFD")
	}
	for end > 0 && end < len(text) && !utf8.RuneStart(text[end]) {
		end--
	}
	if end <= t.emitted {
		return ""
	}
	delta := text[t.emitted:end]
	t.emitted = end
	return delta
}

// final returns what is left of the completion's final text.
func (t *textTracker) final(text string) string {
	if len(text) <= t.emitted {
		return ""
	}
	delta := text[t.emitted:]
	t.emitted = len(text)
	return delta
}
