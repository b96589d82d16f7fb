package openai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/switchyard/switchyard/pkg/llm"
)

// classify turns any failure of a call into an *llm.Error.
//
//   - the caller's context: cancelled -> KindCancelled, deadline -> KindTimeout
//   - *openai.Error (an HTTP status >= 400), by status, code and message:
//     429 -> KindRateLimited with RetryAfter from retry-after-ms, retry-after
//     (seconds or an HTTP date) or the message ("try again in 1.5s"), except
//     code insufficient_quota -> KindAuth (the account cannot pay; retrying
//     the same deployment cannot help); context_length_exceeded (code or
//     message) -> KindContextWindow; content_filter,
//     content_policy_violation -> KindContentPolicy; 401/403 -> KindAuth;
//     400/404/413/422 -> KindBadRequest; 408 -> KindTimeout; 409 and 5xx ->
//     KindUnavailable.
//   - an error event inside the SSE stream -> by its code, else KindUnavailable
//   - network errors -> KindConnection (KindTimeout for timeouts)
//
// Messages come from the vendor's body with the API key (and other
// credential-like header values) redacted. The SDK error, which holds the
// request and its headers, is deliberately not kept as the cause.
func (c *Client) classify(ctx context.Context, err error) *llm.Error {
	if le, ok := errors.AsType[*llm.Error](err); ok {
		return le
	}
	e := &llm.Error{Provider: c.name}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller's end decides, whatever the transport saw of it.
		llm.ClassifyTransport(ctx, e, ctxErr)
		e.Err = ctxErr
		return e
	}
	if apiErr, ok := errors.AsType[*oai.Error](err); ok {
		c.fromAPIError(e, apiErr)
		return e
	}
	if se, ok := errors.AsType[*ssestream.StreamError](err); ok {
		msg, code, typ := parseErrorBody(se.Event.Data)
		e.Code = cmp.Or(code, typ)
		e.Message = c.redact(cmp.Or(msg, "error event in stream"))
		e.Kind = kindFromCode(code, typ)
		if e.Kind == llm.KindUnknown {
			e.Kind = kindFromMessage(e.Message)
		}
		if e.Kind == llm.KindUnknown {
			e.Kind = llm.KindUnavailable
		}
		return e
	}

	llm.ClassifyTransport(ctx, e, err)
	e.Message = c.redact(e.Message)
	// Transport causes stay reachable for errors.Is (context.Canceled,
	// net.Error); their text never went through a vendor.
	e.Err = llm.Scrubbed{Err: err, Secrets: c.secrets}
	return e
}

// vendorError is the "error" object of OpenAI's error body; compatible
// servers vary (code may be a number, message may be missing).
type vendorError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   any             `json:"param"`
	Code    json.RawMessage `json:"code"`
}

func (v vendorError) code() string {
	var s string
	if json.Unmarshal(v.Code, &s) == nil {
		return s
	}
	if len(v.Code) > 0 && string(v.Code) != "null" {
		return string(v.Code)
	}
	return ""
}

func (c *Client) fromAPIError(e *llm.Error, apiErr *oai.Error) {
	e.Status = apiErr.StatusCode
	e.Code = apiErr.Code
	typ := apiErr.Type
	msg := apiErr.Message
	var hdr http.Header
	if apiErr.Response != nil {
		hdr = apiErr.Response.Header
		if msg == "" || e.Code == "" {
			bm, bc, bt := bodyError(apiErr.Response)
			msg, e.Code, typ = cmp.Or(msg, bm), cmp.Or(e.Code, bc), cmp.Or(typ, bt)
		}
	}
	if e.Code == "" {
		e.Code = typ
	}
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	e.Message = c.redact(msg)

	// Explicit codes first; the message only for 4xx other than 429, whose
	// texts ("Request too large ... tokens per min") would mislead the regexps.
	e.Kind = kindFromCode(e.Code, typ)
	if e.Kind == llm.KindUnknown && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
		e.Kind = kindFromMessage(msg)
	}
	if e.Kind == llm.KindUnknown {
		e.Kind = kindFromStatus(e.Status)
	}
	if e.Code == "insufficient_quota" || typ == "insufficient_quota" {
		e.Kind = llm.KindAuth
	}
	if e.Kind == llm.KindRateLimited || e.Kind == llm.KindUnavailable {
		e.RetryAfter = retryAfter(hdr, msg, c.now())
	}
}

// normaliseErrorBody rewrites error bodies whose "error" is not an object
// ({"error":"text"} from Ollama and others) into OpenAI's shape: the SDK
// fails to decode them and would otherwise return a JSON error without the
// HTTP status.
func normaliseErrorBody(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res == nil || res.StatusCode < 400 || res.Body == nil {
		return res, err
	}
	raw, rerr := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(raw))
	var probe struct {
		Error json.RawMessage `json:"error"`
	}
	if rerr != nil || json.Unmarshal(raw, &probe) != nil || len(probe.Error) == 0 || probe.Error[0] == '{' {
		return res, nil // the SDK copes with these
	}
	msg, code, typ := parseErrorBody(raw)
	fixed, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg, "code": code, "type": typ}})
	res.Body = io.NopCloser(bytes.NewReader(fixed))
	res.ContentLength = int64(len(fixed))
	res.Header.Del("Content-Length")
	return res, nil
}

// bodyError re-reads the error body the SDK kept, for shapes it does not
// parse.
func bodyError(res *http.Response) (msg, code, typ string) {
	if res.Body == nil {
		return "", "", ""
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", "", ""
	}
	return parseErrorBody(raw)
}

// parseErrorBody reads OpenAI's {"error":{"message","type","code"}} and the
// variants of compatible servers: {"error":"text"}, {"message":...},
// {"detail":...}, plain text.
func parseErrorBody(raw []byte) (msg, code, typ string) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", "", ""
	}
	var b struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
		Code    json.RawMessage `json:"code"`
		Type    string          `json:"type"`
	}
	if json.Unmarshal(raw, &b) != nil {
		s := strings.TrimSpace(string(raw))
		if len(s) > 500 {
			s = s[:500]
		}
		return s, "", ""
	}
	var ve vendorError
	if json.Unmarshal(b.Error, &ve) == nil && (ve.Message != "" || ve.Type != "") {
		return ve.Message, ve.code(), ve.Type
	}
	var s string
	if json.Unmarshal(b.Error, &s) == nil && s != "" {
		return s, "", ""
	}
	code = vendorError{Code: b.Code}.code()
	if b.Message != "" {
		return b.Message, code, b.Type
	}
	if b.Detail != nil {
		if s, ok := b.Detail.(string); ok {
			return s, code, b.Type
		}
		d, _ := json.Marshal(b.Detail)
		return string(d), code, b.Type
	}
	return "", code, b.Type
}

var (
	contextWindowRe = regexp.MustCompile(`(?i)context_length_exceeded|maximum context length|context length|context window|prompt is too long|too many tokens|reduce the length of the (messages|prompt)|input is too long`)
	contentPolicyRe = regexp.MustCompile(`(?i)content_filter|content_policy|content management policy|safety system|flagged by|responsible ai`)
)

// kindFromCode classifies by the vendor's error code and type.
func kindFromCode(code, typ string) llm.Kind {
	ct := strings.ToLower(code + " " + typ)
	switch {
	case strings.Contains(ct, "context_length_exceeded"):
		return llm.KindContextWindow
	case strings.Contains(ct, "content_filter"), strings.Contains(ct, "content_policy"):
		return llm.KindContentPolicy
	case strings.Contains(ct, "rate_limit"):
		return llm.KindRateLimited
	case strings.Contains(ct, "server_error"), strings.Contains(ct, "overloaded"):
		return llm.KindUnavailable
	}
	return llm.KindUnknown
}

// kindFromMessage classifies by the vendor's message, for compatible servers
// that send no code. This package is the only place where error text decides
// a Kind.
func kindFromMessage(msg string) llm.Kind {
	switch {
	case contextWindowRe.MatchString(msg):
		return llm.KindContextWindow
	case contentPolicyRe.MatchString(msg):
		return llm.KindContentPolicy
	}
	return llm.KindUnknown
}

func kindFromStatus(status int) llm.Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return llm.KindRateLimited
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return llm.KindAuth
	case status == http.StatusRequestTimeout:
		return llm.KindTimeout
	case status == http.StatusConflict, status >= 500:
		return llm.KindUnavailable
	case status >= 400:
		return llm.KindBadRequest
	}
	return llm.KindUnknown
}

var tryAgainRe = regexp.MustCompile(`(?i)try again in\s+((?:[0-9]*\.?[0-9]+(?:ms|h|m|s))+)`)

// retryAfter reads the response headers (llm.RetryAfter), then OpenAI's
// "Please try again in 1.5s" in the message.
func retryAfter(h http.Header, msg string, now time.Time) time.Duration {
	if d := llm.RetryAfter(h, now); d > 0 {
		return d
	}
	if m := tryAgainRe.FindStringSubmatch(msg); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// redact removes secrets from a message that is about to leave the package.
func (c *Client) redact(s string) string { return llm.Scrub(s, c.secrets) }

func (c *Client) errorf(kind llm.Kind, format string, args ...any) *llm.Error {
	return &llm.Error{Kind: kind, Provider: c.name, Message: c.redact(fmt.Sprintf(format, args...))}
}
