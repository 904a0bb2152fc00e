package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/generate"
)

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	samplingFields
	Messages            []chatInMessage `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            bool            `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"`
}

// chatInMessage is a message as clients send it: content is a string or
// a list of {"type": "text", "text": ...} parts.
type chatInMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

func (m chatInMessage) text() (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", errors.New("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part type %q is not supported (text only)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
	// WeightVersion produced every choice (as in completions).
	WeightVersion int64 `json:"weight_version"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatMessage  `json:"message,omitempty"`
	Delta        *chatMessage  `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatLogprobs struct {
	Content []chatTokenLogprob `json:"content"`
}

type chatTokenLogprob struct {
	Token       string             `json:"token"`
	Logprob     float32            `json:"logprob"`
	Bytes       []int              `json:"bytes"`
	TopLogprobs []chatTokenLogprob `json:"top_logprobs"`
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !s.decode(w, r, &req) {
		return
	}
	reqs, err := s.chatRequests(r.Context(), &req)
	if err != nil {
		s.fail(w, err)
		return
	}
	id := s.newID("chatcmpl")
	if req.Stream {
		s.stream(w, r, reqs, &streamFormat{id: id, chat: true, usage: req.includeUsage(), logprobs: req.Logprobs})
		return
	}
	res, err := s.eng.Generate(r.Context(), reqs)
	if err != nil {
		s.fail(w, err)
		return
	}
	rs := res[0]
	out := chatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.opt.ModelName,
		Usage: &usage{PromptTokens: rs.PromptTokens}, WeightVersion: s.eng.Stats().WeightVersion}
	for _, c := range rs.Completions {
		out.WeightVersion = c.WeightVersion
		text := c.Text
		ch := chatChoice{Index: c.Index, Message: &chatMessage{Role: "assistant", Content: &text}, FinishReason: finish(c.FinishReason)}
		if req.Logprobs {
			ch.Logprobs = &chatLogprobs{Content: s.chatLogprobs(s.tokenTexts(reqs[0].Prompt), &c)}
		}
		out.Choices = append(out.Choices, ch)
		out.Usage.CompletionTokens += len(c.Tokens)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens + out.Usage.CompletionTokens
	w.Header().Set(WeightVersionHeader, strconv.FormatInt(out.WeightVersion, 10))
	writeJSON(w, http.StatusOK, out)
}

// chatRequests renders the conversation with the chat template and builds
// the engine request. The rendering stops when ctx ends or the server
// drains.
func (s *Server) chatRequests(ctx context.Context, req *chatRequest) ([]generate.Request, error) {
	if s.opt.Template == nil {
		if err := s.opt.TemplateError; err != nil && !errors.Is(err, chattmpl.ErrNoTemplate) {
			return nil, fmt.Errorf("the model's chat template does not load: %w", err)
		}
		return nil, perr("messages", "this model has no chat template; use /v1/completions")
	}
	if len(req.Tools) > 0 && string(req.Tools) != "null" && string(req.Tools) != "[]" {
		return nil, perr("tools", "is not supported")
	}
	if len(req.Messages) == 0 {
		return nil, perr("messages", "must hold at least one message")
	}
	maxTokens, lengthParam, err := s.requestedTokens(s.opt.ChatMaxTokens,
		tokenField{"max_tokens", req.MaxTokens}, tokenField{"max_completion_tokens", req.MaxCompletionTokens})
	if err != nil {
		return nil, err
	}
	top := 0
	if req.TopLogprobs != nil {
		if !req.Logprobs || *req.TopLogprobs < 0 || *req.TopLogprobs > generate.MaxTopLogProbs {
			return nil, perr("top_logprobs", "needs logprobs: true and a value in [0, %d]", generate.MaxTopLogProbs)
		}
		top = *req.TopLogprobs
	}
	p, err := req.sampling(maxTokens, top)
	if err != nil {
		return nil, err
	}
	msgs := make([]chattmpl.Message, len(req.Messages))
	for i, m := range req.Messages {
		text, err := m.text()
		if err != nil {
			return nil, perr(fmt.Sprintf("messages[%d].content", i), "%v", err)
		}
		msgs[i] = chattmpl.Message{Role: m.Role, Content: text, Name: m.Name}
	}
	prompt, err := s.render(ctx, msgs)
	if err != nil {
		return nil, err
	}
	return s.engineRequests([][]int32{prompt}, p, lengthParam, "messages")
}

// render renders and encodes msgs, stopping when ctx ends or the server
// drains. A template that rejects the conversation (raise_exception, a
// missing field) is the client's 400; one stopped by its limits is the
// server's fault, a 500.
func (s *Server) render(ctx context.Context, msgs []chattmpl.Message) ([]int32, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.draining, cancel)()
	prompt, err := s.enc.ChatContext(ctx, msgs)
	var le *chattmpl.LimitError
	switch {
	case err == nil:
		return prompt.IDs, nil
	case s.draining.Err() != nil:
		return nil, errDraining
	case errors.As(err, &le):
		return nil, err
	}
	return nil, perr("messages", "%v", err)
}

// chatLogprobs lays out the tokens of c in the chat API's shape; tt
// decodes them after the prompt and the tokens before them.
func (s *Server) chatLogprobs(tt *tokenTexts, c *generate.Completion) []chatTokenLogprob {
	out := []chatTokenLogprob{}
	for i, id := range c.Tokens {
		alts := []chatTokenLogprob{}
		if c.TopLogProbs != nil {
			for _, t := range c.TopLogProbs[i] {
				alts = append(alts, tokenLogprob(tt.alt(t.Token), t.LogProb))
			}
		}
		text, _ := tt.next(id)
		e := tokenLogprob(text, c.RawLogProbs[i])
		e.TopLogprobs = alts
		out = append(out, e)
	}
	return out
}

func tokenLogprob(text string, lp float32) chatTokenLogprob {
	b := make([]int, len(text))
	for i := range text {
		b[i] = int(text[i])
	}
	return chatTokenLogprob{Token: text, Logprob: lp, Bytes: b}
}
