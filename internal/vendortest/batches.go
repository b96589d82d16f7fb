package vendortest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Batches replays one vendor's batch API, as its documentation describes
// it (each handler names its page):
//
//   - OpenAI's Batch API (OpenAIBatches): file upload, batch create, get,
//     list, cancel, output and error files.
//   - Anthropic's Message Batches (AnthropicBatches): create, get, list,
//     cancel, results as JSONL.
//   - Gemini's batch mode (GeminiBatches): batchGenerateContent with inline
//     requests, the batch's operation (get, list, cancel) with the inline
//     responses.
//
// A batch is created in its vendor's first state (validating / pending /
// in_progress) and moves one state on at each poll (a get of that batch):
// Running polls in progress, then it ends. Its lines are answered when it
// ends, by Answer (default: "answer to <prompt>", 10 prompt and 5
// completion tokens). ExpireNext makes the next batch to end expire with
// half its lines not run; a cancelled batch runs none of the lines it had
// not run; FailNext makes the next created batch fail as a whole (OpenAI,
// Gemini). Hold keeps every batch in progress until Release.
type Batches struct {
	// URL is the base URL to configure: OpenAI's ends in /v1, Anthropic's
	// and Gemini's are the host.
	URL string

	vendor string

	mu      sync.Mutex
	running int // polls a batch stays in progress
	answer  func(Line) Outcome
	hold    bool
	expire  bool   // the next batch to end expires
	failMsg string // the next batch created fails
	seq     int
	batches []*replayBatch
	files   map[string][]byte
	polls   int
	fetches int
}

// Line is one request of a batch as the server received it.
type Line struct {
	Batch    string
	CustomID string
	Model    string
	Prompt   string // the last message's text
}

// Outcome is how the server answers one line.
type Outcome struct {
	// Text is the answer (default: "answer to <prompt>").
	Text string
	// Status, when not 0, fails the line with this HTTP status and
	// ErrType / ErrMessage (the vendor's error type and message).
	Status     int
	ErrType    string
	ErrMessage string
	// PromptTokens and CompletionTokens are the answer's usage (default 10
	// and 5).
	PromptTokens, CompletionTokens int
}

// ReplayedBatch is what a test can see of one batch.
type ReplayedBatch struct {
	ID     string
	Ref    string // OpenAI's metadata switchyard_batch, Gemini's display name
	Model  string
	Lines  []Line
	Status string // the vendor's word for its state now
}

type replayBatch struct {
	id, ref, model string
	lines          []Line
	created        time.Time
	polls          int
	cancelled      bool
	state          string // created, running, ended
	end            string // completed, expired, cancelled, failed
	failMsg        string
	ran            int // lines run (answered), once ended
	answers        []Outcome
}

func newBatches(vendor string) *Batches {
	return &Batches{vendor: vendor, running: 2, files: map[string][]byte{}}
}

// SetRunning sets how many polls a batch stays in progress (default 2).
func (b *Batches) SetRunning(polls int) { b.mu.Lock(); b.running = polls; b.mu.Unlock() }

// SetAnswer decides how lines are answered.
func (b *Batches) SetAnswer(f func(Line) Outcome) { b.mu.Lock(); b.answer = f; b.mu.Unlock() }

// Hold keeps every batch in progress, whatever the polls, until Release.
func (b *Batches) Hold() { b.mu.Lock(); b.hold = true; b.mu.Unlock() }

// Release lets the batches go on.
func (b *Batches) Release() { b.mu.Lock(); b.hold = false; b.mu.Unlock() }

// ExpireNext makes the next batch to end expire: its first half of lines
// answered, the rest not run.
func (b *Batches) ExpireNext() { b.mu.Lock(); b.expire = true; b.mu.Unlock() }

// FailNext makes the next batch created fail as a whole with msg.
func (b *Batches) FailNext(msg string) { b.mu.Lock(); b.failMsg = msg; b.mu.Unlock() }

// Created returns the batches created so far, oldest first.
func (b *Batches) Created() []ReplayedBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ReplayedBatch, 0, len(b.batches))
	for _, rb := range b.batches {
		out = append(out, ReplayedBatch{ID: rb.id, Ref: rb.ref, Model: rb.model, Lines: append([]Line(nil), rb.lines...), Status: b.status(rb)})
	}
	return out
}

// BilledLines is the number of lines the vendor ran (and would bill), over
// every batch.
func (b *Batches) BilledLines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, rb := range b.batches {
		n += rb.ran
	}
	return n
}

// Cancelled reports whether the batch of id (as Created names it) was
// cancelled through the vendor's cancel endpoint.
func (b *Batches) Cancelled(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rb := range b.batches {
		if rb.id == id {
			return rb.cancelled
		}
	}
	return false
}

// Polls is the number of gets of a batch the server answered.
func (b *Batches) Polls() int { b.mu.Lock(); defer b.mu.Unlock(); return b.polls }

// ResultFetches is the number of times results were read.
func (b *Batches) ResultFetches() int { b.mu.Lock(); defer b.mu.Unlock(); return b.fetches }

// create records a new batch.
func (b *Batches) create(prefix, ref, model string, lines []Line) *replayBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	rb := &replayBatch{id: fmt.Sprintf("%s%d", prefix, b.seq), ref: ref, model: model, created: time.Now(), state: "created"}
	for _, l := range lines {
		l.Batch = rb.id
		rb.lines = append(rb.lines, l)
	}
	if b.failMsg != "" {
		rb.state, rb.end, rb.failMsg = "ended", "failed", b.failMsg
		b.failMsg = ""
	}
	b.batches = append(b.batches, rb)
	return rb
}

func (b *Batches) find(id string) *replayBatch {
	for _, rb := range b.batches {
		if rb.id == id {
			return rb
		}
	}
	return nil
}

// poll advances rb by one poll (b.mu held).
func (b *Batches) poll(rb *replayBatch) {
	b.polls++
	if rb.state == "ended" {
		return
	}
	rb.polls++
	switch {
	case rb.cancelled:
		b.finish(rb, "cancelled")
	case b.hold:
		rb.state = "running"
	case rb.polls <= b.running:
		rb.state = "running"
	default:
		end := "completed"
		if b.expire {
			end, b.expire = "expired", false
		}
		b.finish(rb, end)
	}
}

// finish ends rb and answers the lines it ran (b.mu held).
func (b *Batches) finish(rb *replayBatch, end string) {
	rb.state, rb.end = "ended", end
	switch end {
	case "completed":
		rb.ran = len(rb.lines)
	case "expired":
		rb.ran = len(rb.lines) / 2
	case "cancelled":
		rb.ran = 0
	}
	for _, l := range rb.lines[:rb.ran] {
		o := Outcome{}
		if b.answer != nil {
			o = b.answer(l)
		}
		if o.Status == 0 && o.Text == "" {
			o.Text = "answer to " + l.Prompt
		}
		if o.PromptTokens == 0 && o.CompletionTokens == 0 {
			o.PromptTokens, o.CompletionTokens = 10, 5
		}
		rb.answers = append(rb.answers, o)
	}
}

// status is rb's state in the vendor's words (b.mu held).
func (b *Batches) status(rb *replayBatch) string {
	switch b.vendor {
	case "openai":
		switch {
		case rb.state == "created":
			return "validating"
		case rb.state == "running" && rb.cancelled:
			return "cancelling"
		case rb.state == "running":
			return "in_progress"
		}
		return rb.end
	case "anthropic":
		switch {
		case rb.state == "ended":
			return "ended"
		case rb.cancelled:
			return "canceling"
		}
		return "in_progress"
	}
	switch { // gemini
	case rb.state == "created":
		return "BATCH_STATE_PENDING"
	case rb.state == "running":
		return "BATCH_STATE_RUNNING"
	}
	return map[string]string{"completed": "BATCH_STATE_SUCCEEDED", "expired": "BATCH_STATE_EXPIRED",
		"cancelled": "BATCH_STATE_CANCELLED", "failed": "BATCH_STATE_FAILED"}[rb.end]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- OpenAI ------------------------------------------------------------

// OpenAIBatches starts a replay of OpenAI's Batch API, after
// https://platform.openai.com/docs/guides/batch and the API reference's
// Files (https://platform.openai.com/docs/api-reference/files) and Batch
// (https://platform.openai.com/docs/api-reference/batch) pages: POST
// /v1/files (multipart, purpose=batch), POST /v1/batches, GET
// /v1/batches/{id}, GET /v1/batches, POST /v1/batches/{id}/cancel and GET
// /v1/files/{id}/content.
func OpenAIBatches(t testing.TB) *Batches {
	b, stop := ServeOpenAIBatches()
	t.Cleanup(stop)
	return b
}

// ServeOpenAIBatches is OpenAIBatches outside a test (a benchmark): stop
// closes the server.
func ServeOpenAIBatches() (b *Batches, stop func()) {
	b = newBatches("openai")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/files", b.openAIUpload)
	mux.HandleFunc("POST /v1/batches", b.openAICreate)
	mux.HandleFunc("GET /v1/batches", b.openAIList)
	mux.HandleFunc("GET /v1/batches/{id}", b.openAIGet)
	mux.HandleFunc("POST /v1/batches/{id}/cancel", b.openAICancel)
	mux.HandleFunc("GET /v1/files/{id}/content", b.openAIContent)
	srv := httptest.NewServer(mux)
	b.URL = srv.URL + "/v1"
	return b, srv.Close
}

func (b *Batches) openAIUpload(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(256 << 20); err != nil || r.FormValue("purpose") != "batch" {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "a batch file upload needs purpose=batch and a file", "type": "invalid_request_error"}})
		return
	}
	f, h, err := r.FormFile("file")
	if err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "no file", "type": "invalid_request_error"}})
		return
	}
	data, _ := io.ReadAll(f)
	b.mu.Lock()
	b.seq++
	id := fmt.Sprintf("file-%d", b.seq)
	b.files[id] = data
	b.mu.Unlock()
	writeJSON(w, 200, map[string]any{"id": id, "object": "file", "bytes": len(data), "created_at": time.Now().Unix(), "filename": h.Filename, "purpose": "batch"})
}

func (b *Batches) openAICreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	b.mu.Lock()
	data, ok := b.files[req.InputFileID]
	b.mu.Unlock()
	if !ok || req.Endpoint != "/v1/chat/completions" || req.CompletionWindow != "24h" {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "bad batch: unknown input file, endpoint or window", "type": "invalid_request_error"}})
		return
	}
	var lines []Line
	model := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l struct {
			CustomID string `json:"custom_id"`
			Method   string `json:"method"`
			URL      string `json:"url"`
			Body     struct {
				Model    string `json:"model"`
				Stream   bool   `json:"stream"`
				Messages []struct {
					Content any `json:"content"`
				} `json:"messages"`
				StreamOptions any `json:"stream_options"`
			} `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Method != "POST" || l.URL != "/v1/chat/completions" || l.Body.Stream || l.Body.StreamOptions != nil {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "bad input line: " + sc.Text(), "type": "invalid_request_error"}})
			return
		}
		model = l.Body.Model
		prompt := ""
		if n := len(l.Body.Messages); n > 0 {
			prompt = text(l.Body.Messages[n-1].Content)
		}
		lines = append(lines, Line{CustomID: l.CustomID, Model: l.Body.Model, Prompt: prompt})
	}
	rb := b.create("batch_", req.Metadata["switchyard_batch"], model, lines)
	b.mu.Lock()
	defer b.mu.Unlock()
	writeJSON(w, 200, b.openAIBatch(rb, req.InputFileID, req.Metadata))
}

func (b *Batches) openAIBatch(rb *replayBatch, inputFile string, meta map[string]string) map[string]any {
	o := map[string]any{
		"id": rb.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": nil,
		"input_file_id": inputFile, "completion_window": "24h", "status": b.status(rb),
		"created_at": rb.created.Unix(), "metadata": meta,
		"request_counts": map[string]any{"total": len(rb.lines), "completed": 0, "failed": 0},
	}
	if meta == nil && rb.ref != "" {
		o["metadata"] = map[string]string{"switchyard_batch": rb.ref}
	}
	if rb.state != "ended" {
		return o
	}
	if rb.end == "failed" {
		o["errors"] = map[string]any{"object": "list", "data": []any{map[string]any{"code": "invalid_request", "message": rb.failMsg, "line": 1}}}
		return o
	}
	var out, errs bytes.Buffer
	failed := 0
	for i, l := range rb.lines {
		var line map[string]any
		switch {
		case i >= rb.ran:
			code, msg := "batch_expired", "This request could not be executed before the completion window expired."
			if rb.end == "cancelled" {
				code, msg = "batch_cancelled", "This request was not executed because the batch was cancelled."
			}
			line = map[string]any{"id": fmt.Sprintf("batch_req_%s_%d", rb.id, i), "custom_id": l.CustomID, "response": nil,
				"error": map[string]any{"code": code, "message": msg}}
		case rb.answers[i].Status != 0:
			a := rb.answers[i]
			line = map[string]any{"id": fmt.Sprintf("batch_req_%s_%d", rb.id, i), "custom_id": l.CustomID, "error": nil,
				"response": map[string]any{"status_code": a.Status, "request_id": fmt.Sprintf("req_%d", i),
					"body": map[string]any{"error": map[string]any{"message": a.ErrMessage, "type": a.ErrType, "param": nil, "code": nil}}}}
		default:
			line = map[string]any{"id": fmt.Sprintf("batch_req_%s_%d", rb.id, i), "custom_id": l.CustomID, "error": nil,
				"response": map[string]any{"status_code": 200, "request_id": fmt.Sprintf("req_%d", i), "body": map[string]any{
					"id": fmt.Sprintf("chatcmpl-%s-%d", rb.id, i), "object": "chat.completion", "created": rb.created.Unix(), "model": l.Model,
					"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": rb.answers[i].Text}, "logprobs": nil, "finish_reason": "stop"}},
					"usage":   map[string]any{"prompt_tokens": rb.answers[i].PromptTokens, "completion_tokens": rb.answers[i].CompletionTokens, "total_tokens": rb.answers[i].PromptTokens + rb.answers[i].CompletionTokens},
				}}}
			mustLine(&out, line)
			continue
		}
		failed++
		mustLine(&errs, line)
	}
	if out.Len() > 0 {
		o["output_file_id"] = rb.id + "-output"
		b.files[rb.id+"-output"] = out.Bytes()
	}
	if errs.Len() > 0 {
		o["error_file_id"] = rb.id + "-errors"
		b.files[rb.id+"-errors"] = errs.Bytes()
	}
	o["request_counts"] = map[string]any{"total": len(rb.lines), "completed": len(rb.lines) - failed, "failed": failed}
	return o
}

func mustLine(buf *bytes.Buffer, v any) {
	data, _ := json.Marshal(v)
	buf.Write(data)
	buf.WriteByte('\n')
}

func (b *Batches) openAIGet(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(r.PathValue("id"))
	if rb == nil {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"message": "No batch found", "type": "invalid_request_error"}})
		return
	}
	b.poll(rb)
	writeJSON(w, 200, b.openAIBatch(rb, "", nil))
}

func (b *Batches) openAIList(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data := []any{}
	for i := len(b.batches) - 1; i >= 0; i-- { // newest first
		data = append(data, b.openAIBatch(b.batches[i], "", nil))
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data, "has_more": false})
}

func (b *Batches) openAICancel(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(r.PathValue("id"))
	if rb == nil {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"message": "No batch found", "type": "invalid_request_error"}})
		return
	}
	if rb.state != "ended" {
		rb.cancelled, rb.state = true, "running"
	}
	writeJSON(w, 200, b.openAIBatch(rb, "", nil))
}

func (b *Batches) openAIContent(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	data, ok := b.files[r.PathValue("id")]
	b.fetches++
	b.mu.Unlock()
	if !ok {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"message": "No such File object", "type": "invalid_request_error"}})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// ---- Anthropic ---------------------------------------------------------

// AnthropicBatches starts a replay of Anthropic's Message Batches API,
// after https://docs.anthropic.com/en/docs/build-with-claude/batch-processing
// and the API reference (https://docs.anthropic.com/en/api/creating-message-batches,
// retrieving-message-batches, listing-message-batches,
// canceling-message-batches, retrieving-message-batch-results): POST
// /v1/messages/batches, GET /v1/messages/batches/{id}, GET
// /v1/messages/batches, POST /v1/messages/batches/{id}/cancel and GET
// /v1/messages/batches/{id}/results (JSONL).
func AnthropicBatches(t testing.TB) *Batches {
	b := newBatches("anthropic")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages/batches", b.anthropicCreate)
	mux.HandleFunc("GET /v1/messages/batches", b.anthropicList)
	mux.HandleFunc("GET /v1/messages/batches/{id}", b.anthropicGet)
	mux.HandleFunc("POST /v1/messages/batches/{id}/cancel", b.anthropicCancel)
	mux.HandleFunc("GET /v1/messages/batches/{id}/results", b.anthropicResults)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
}

func (b *Batches) anthropicCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Requests []struct {
			CustomID string `json:"custom_id"`
			Params   struct {
				Model     string `json:"model"`
				MaxTokens int    `json:"max_tokens"`
				Stream    bool   `json:"stream"`
				Messages  []struct {
					Content any `json:"content"`
				} `json:"messages"`
			} `json:"params"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Requests) == 0 {
		anthropicError(w, 400, "invalid_request_error", "requests: at least one request is required")
		return
	}
	var lines []Line
	model := ""
	for _, q := range req.Requests {
		if q.CustomID == "" || q.Params.MaxTokens <= 0 || q.Params.Stream || len(q.Params.Messages) == 0 {
			anthropicError(w, 400, "invalid_request_error", "requests: custom_id, params.max_tokens and params.messages are required; stream is not allowed")
			return
		}
		model = q.Params.Model
		lines = append(lines, Line{CustomID: q.CustomID, Model: q.Params.Model, Prompt: text(q.Params.Messages[len(q.Params.Messages)-1].Content)})
	}
	rb := b.create("msgbatch_", "", model, lines)
	b.mu.Lock()
	defer b.mu.Unlock()
	writeJSON(w, 200, b.anthropicBatch(rb))
}

func (b *Batches) anthropicBatch(rb *replayBatch) map[string]any {
	counts := map[string]int{"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
	o := map[string]any{
		"id": rb.id, "type": "message_batch", "processing_status": b.status(rb),
		"created_at": rb.created.UTC().Format(time.RFC3339Nano), "expires_at": rb.created.Add(24 * time.Hour).UTC().Format(time.RFC3339Nano),
		"ended_at": nil, "archived_at": nil, "cancel_initiated_at": nil, "results_url": nil,
	}
	if rb.cancelled {
		o["cancel_initiated_at"] = rb.created.UTC().Format(time.RFC3339Nano)
	}
	if rb.state != "ended" {
		counts["processing"] = len(rb.lines)
	} else {
		for i := range rb.lines {
			switch {
			case i >= rb.ran && rb.end == "cancelled":
				counts["canceled"]++
			case i >= rb.ran:
				counts["expired"]++
			case rb.answers[i].Status != 0:
				counts["errored"]++
			default:
				counts["succeeded"]++
			}
		}
		o["ended_at"] = time.Now().UTC().Format(time.RFC3339Nano)
		o["results_url"] = b.URL + "/v1/messages/batches/" + rb.id + "/results"
	}
	o["request_counts"] = counts
	return o
}

func (b *Batches) anthropicGet(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(r.PathValue("id"))
	if rb == nil {
		anthropicError(w, 404, "not_found_error", "message batch not found")
		return
	}
	b.poll(rb)
	writeJSON(w, 200, b.anthropicBatch(rb))
}

func (b *Batches) anthropicList(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data := []any{}
	for i := len(b.batches) - 1; i >= 0; i-- {
		data = append(data, b.anthropicBatch(b.batches[i]))
	}
	writeJSON(w, 200, map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil})
}

func (b *Batches) anthropicCancel(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(r.PathValue("id"))
	if rb == nil {
		anthropicError(w, 404, "not_found_error", "message batch not found")
		return
	}
	if rb.state != "ended" {
		rb.cancelled = true
	}
	writeJSON(w, 200, b.anthropicBatch(rb))
}

func (b *Batches) anthropicResults(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fetches++
	rb := b.find(r.PathValue("id"))
	if rb == nil || rb.state != "ended" {
		anthropicError(w, 404, "not_found_error", "results are available once the batch has ended")
		return
	}
	w.Header().Set("Content-Type", "application/x-jsonl")
	var out bytes.Buffer
	// "Results are not guaranteed to be in the same order as requests":
	// newest line first.
	for i := len(rb.lines) - 1; i >= 0; i-- {
		l := rb.lines[i]
		var result map[string]any
		switch {
		case i >= rb.ran && rb.end == "cancelled":
			result = map[string]any{"type": "canceled"}
		case i >= rb.ran:
			result = map[string]any{"type": "expired"}
		case rb.answers[i].Status != 0:
			a := rb.answers[i]
			result = map[string]any{"type": "errored", "error": map[string]any{"type": "error", "request_id": "req_" + strconv.Itoa(i),
				"error": map[string]any{"type": a.ErrType, "message": a.ErrMessage}}}
		default:
			result = map[string]any{"type": "succeeded", "message": map[string]any{
				"id": fmt.Sprintf("msg_%s_%d", rb.id, i), "type": "message", "role": "assistant", "model": l.Model,
				"content":     []any{map[string]any{"type": "text", "text": rb.answers[i].Text}},
				"stop_reason": "end_turn", "stop_sequence": nil,
				"usage": map[string]any{"input_tokens": rb.answers[i].PromptTokens, "output_tokens": rb.answers[i].CompletionTokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
			}}
		}
		mustLine(&out, map[string]any{"custom_id": l.CustomID, "result": result})
	}
	_, _ = w.Write(out.Bytes())
}

// ---- Gemini ------------------------------------------------------------

// GeminiBatches starts a replay of Gemini's batch mode, after
// https://ai.google.dev/gemini-api/docs/batch-mode and the API reference
// https://ai.google.dev/api/batch-mode: POST
// /v1beta/models/{model}:batchGenerateContent with inline requests returns
// the batch's long-running operation (batches/{id}, its metadata the
// GenerateContentBatch: displayName, state, output.inlinedResponses); GET
// /v1beta/batches/{id}, GET /v1beta/batches (operations) and POST
// /v1beta/batches/{id}:cancel.
func GeminiBatches(t testing.TB) *Batches {
	b := newBatches("gemini")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1beta/models/{action}", b.geminiCreate)
	mux.HandleFunc("GET /v1beta/batches", b.geminiList)
	mux.HandleFunc("GET /v1beta/batches/{id}", b.geminiGet)
	mux.HandleFunc("POST /v1beta/batches/{action}", b.geminiCancel)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func geminiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": "INVALID_ARGUMENT"}})
}

func (b *Batches) geminiCreate(w http.ResponseWriter, r *http.Request) {
	model, ok := strings.CutSuffix(r.PathValue("action"), ":batchGenerateContent")
	if !ok {
		geminiError(w, 404, "unknown method")
		return
	}
	var req struct {
		Batch struct {
			DisplayName string `json:"displayName"`
			InputConfig struct {
				Requests struct {
					Requests []struct {
						Request struct {
							Contents []struct {
								Parts []struct {
									Text string `json:"text"`
								} `json:"parts"`
							} `json:"contents"`
						} `json:"request"`
						Metadata map[string]string `json:"metadata"`
					} `json:"requests"`
				} `json:"requests"`
			} `json:"inputConfig"`
		} `json:"batch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Batch.DisplayName == "" || len(req.Batch.InputConfig.Requests.Requests) == 0 {
		geminiError(w, 400, "batch.displayName and batch.inputConfig are required")
		return
	}
	var lines []Line
	for _, q := range req.Batch.InputConfig.Requests.Requests {
		prompt := ""
		if n := len(q.Request.Contents); n > 0 {
			for _, p := range q.Request.Contents[n-1].Parts {
				prompt += p.Text
			}
		}
		lines = append(lines, Line{CustomID: q.Metadata["key"], Model: model, Prompt: prompt})
	}
	rb := b.create("", req.Batch.DisplayName, model, lines)
	b.mu.Lock()
	defer b.mu.Unlock()
	writeJSON(w, 200, b.geminiOperation(rb))
}

func (b *Batches) geminiOperation(rb *replayBatch) map[string]any {
	name := "batches/" + rb.id
	meta := map[string]any{
		"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
		"name":  name, "model": "models/" + rb.model, "displayName": rb.ref, "state": b.status(rb),
		"createTime": rb.created.UTC().Format(time.RFC3339Nano), "updateTime": time.Now().UTC().Format(time.RFC3339Nano),
		"batchStats": map[string]any{"requestCount": strconv.Itoa(len(rb.lines))},
	}
	op := map[string]any{"name": name, "metadata": meta}
	if rb.state != "ended" {
		return op
	}
	op["done"] = true
	meta["endTime"] = time.Now().UTC().Format(time.RFC3339Nano)
	if rb.end == "failed" {
		op["error"] = map[string]any{"code": 3, "message": rb.failMsg}
		return op
	}
	var responses []any
	for i, l := range rb.lines[:rb.ran] {
		a := rb.answers[i]
		if a.Status != 0 {
			responses = append(responses, map[string]any{"metadata": map[string]string{"key": l.CustomID},
				"error": map[string]any{"code": grpcCode(a.Status), "message": a.ErrMessage}})
			continue
		}
		responses = append(responses, map[string]any{"metadata": map[string]string{"key": l.CustomID}, "response": map[string]any{
			"candidates":    []any{map[string]any{"content": map[string]any{"parts": []any{map[string]any{"text": a.Text}}, "role": "model"}, "finishReason": "STOP", "index": 0}},
			"usageMetadata": map[string]any{"promptTokenCount": a.PromptTokens, "candidatesTokenCount": a.CompletionTokens, "totalTokenCount": a.PromptTokens + a.CompletionTokens},
			"modelVersion":  rb.model,
		}})
	}
	out := map[string]any{"inlinedResponses": map[string]any{"inlinedResponses": responses}}
	meta["output"] = out
	op["response"] = map[string]any{"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput", "inlinedResponses": out["inlinedResponses"]}
	return op
}

// grpcCode is the google.rpc code of an HTTP status.
func grpcCode(status int) int {
	switch status {
	case 429:
		return 8 // RESOURCE_EXHAUSTED
	case 401:
		return 16
	case 403:
		return 7
	case 500:
		return 13
	case 503:
		return 14
	}
	return 3 // INVALID_ARGUMENT
}

func (b *Batches) geminiGet(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(r.PathValue("id"))
	if rb == nil {
		geminiError(w, 404, "batch not found")
		return
	}
	b.poll(rb)
	if rb.state == "ended" {
		b.fetches++ // the answers come with the batch
	}
	writeJSON(w, 200, b.geminiOperation(rb))
}

func (b *Batches) geminiList(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ops := []any{}
	for i := len(b.batches) - 1; i >= 0; i-- {
		ops = append(ops, b.geminiOperation(b.batches[i]))
	}
	writeJSON(w, 200, map[string]any{"operations": ops})
}

func (b *Batches) geminiCancel(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("action"), ":cancel")
	b.mu.Lock()
	defer b.mu.Unlock()
	rb := b.find(id)
	if !ok || rb == nil {
		geminiError(w, 404, "batch not found")
		return
	}
	if rb.state != "ended" {
		rb.cancelled = true
	}
	writeJSON(w, 200, map[string]any{})
}
