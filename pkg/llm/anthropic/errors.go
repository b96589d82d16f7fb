package anthropic

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/switchyard/switchyard/pkg/llm"
)

// classify turns any failure of a Messages call into an *llm.Error.
// midStream says whether output was already handed out.
//
// The message of the result is built from the vendor's error body (or a
// fixed text), never from request headers, and every configured secret is
// scrubbed from it.
func classify(ctx context.Context, err error, midStream bool, secrets []string, now time.Time) *llm.Error {
	if le, ok := errors.AsType[*llm.Error](err); ok {
		return le
	}
	e := &llm.Error{Provider: ProviderName, MidStream: midStream}
	if apiErr, ok := errors.AsType[*sdk.Error](err); ok {
		classifyAPI(e, apiErr, now)
		// The SDK error's text holds the raw response body, which is not
		// ours to vouch for: the cause is a scrubbed copy of its text, not
		// the SDK value.
		e.Err = errors.New(llm.Scrub(apiErr.Error(), secrets))
	} else {
		llm.ClassifyTransport(ctx, e, err)
		// Transport causes stay reachable for errors.Is (context.Canceled,
		// net.Error); their text never went through a vendor.
		e.Err = llm.Scrubbed{Err: err, Secrets: secrets}
	}
	e.Message = llm.Scrub(e.Message, secrets)
	if e.Message == "" {
		e.Message = e.Kind.String()
	}
	return e
}

// classifyAPI classifies an HTTP error response or an SSE error event. For an
// error event the HTTP status is that of the stream (200), so the body's
// error type decides.
func classifyAPI(e *llm.Error, apiErr *sdk.Error, now time.Time) {
	typ, msg := errorBody(apiErr.RawJSON())
	if typ == "" {
		typ = string(apiErr.Type())
	}
	e.Code = typ
	e.Message = msg
	status := apiErr.StatusCode
	if status >= 200 && status < 300 {
		status = 0 // an error event inside a 200 stream
	}
	e.Status = status
	if code, bmsg, ok := bedrockError(apiErr, typ); ok {
		e.Code = code
		e.Message = cmp.Or(msg, bmsg)
		classifyBedrock(e, apiErr, now)
		return
	}
	e.Kind = kindOf(typ, status, msg)
	if (e.Kind == llm.KindRateLimited || e.Kind == llm.KindUnavailable) && apiErr.Response != nil {
		e.RetryAfter = llm.RetryAfter(apiErr.Response.Header, now)
	}
}

// kindOf classifies an error by its body's error type, the HTTP status (0
// when there is none: an error event, a batch line) and the message.
func kindOf(typ string, status int, msg string) llm.Kind {
	switch {
	case typ == "rate_limit_error" || status == http.StatusTooManyRequests:
		return llm.KindRateLimited
	case typ == "overloaded_error" || typ == "api_error" || typ == "timeout_error" || status >= 500:
		return llm.KindUnavailable
	case typ == "authentication_error" || typ == "permission_error" || typ == "billing_error" ||
		status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusPaymentRequired:
		return llm.KindAuth
	case isContextWindow(msg):
		return llm.KindContextWindow
	case status >= 400 || typ != "":
		return llm.KindBadRequest
	}
	return llm.KindUnknown
}

// bedrockError recognises an Amazon Bedrock error and returns its exception
// name (e.g. "ThrottlingException") and message. An HTTP error carries the
// name in the x-amzn-ErrorType header ("Name:namespace-url") or in the body's
// "__type" ("namespace#Name") and the message in {"message": ...}; an
// exception inside the event stream reaches us, translated by the SDK, as an
// SSE error event whose error.type is the exception name.
func bedrockError(apiErr *sdk.Error, typ string) (code, msg string, ok bool) {
	var body struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal([]byte(apiErr.RawJSON()), &body)
	msg = cmp.Or(body.Message, body.MessageU)
	if apiErr.Response != nil {
		if h := apiErr.Response.Header.Get("X-Amzn-Errortype"); h != "" {
			code, _, _ = strings.Cut(h, ":")
			return code, msg, true
		}
	}
	if body.Type != "" {
		code = body.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		return code, msg, true
	}
	if strings.HasSuffix(typ, "Exception") {
		return typ, msg, true
	}
	return "", "", false
}

// classifyBedrock classifies by Bedrock's exception name (matched without
// regard to case: the event stream spells them "throttlingException"), then
// by status. See the InvokeModelWithResponseStream errors in the Bedrock API
// reference.
func classifyBedrock(e *llm.Error, apiErr *sdk.Error, now time.Time) {
	retry := func() {
		if apiErr.Response != nil {
			e.RetryAfter = llm.RetryAfter(apiErr.Response.Header, now)
		}
	}
	switch strings.ToLower(e.Code) {
	case "throttlingexception", "servicequotaexceededexception", "toomanyrequestsexception":
		e.Kind = llm.KindRateLimited
		retry()
	case "serviceunavailableexception", "internalserverexception", "modelstreamerrorexception",
		"modelerrorexception", "modelnotreadyexception":
		e.Kind = llm.KindUnavailable
		retry()
	case "modeltimeoutexception":
		e.Kind = llm.KindTimeout
	case "accessdeniedexception", "unrecognizedclientexception", "invalidsignatureexception",
		"incompletesignatureexception", "expiredtokenexception", "missingauthenticationtokenexception":
		e.Kind = llm.KindAuth
	case "validationexception":
		e.Kind = llm.KindBadRequest
		if isContextWindow(e.Message) {
			e.Kind = llm.KindContextWindow
		}
	case "resourcenotfoundexception":
		e.Kind = llm.KindBadRequest
	default:
		switch s := e.Status; {
		case s == http.StatusTooManyRequests:
			e.Kind = llm.KindRateLimited
			retry()
		case s >= 500:
			e.Kind = llm.KindUnavailable
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			e.Kind = llm.KindAuth
		case isContextWindow(e.Message):
			e.Kind = llm.KindContextWindow
		case s >= 400:
			e.Kind = llm.KindBadRequest
		default:
			// An unknown exception inside a stream: the deployment failed
			// to finish, which a retry may fix.
			e.Kind = llm.KindUnavailable
		}
	}
}

// isContextWindow recognises Anthropic's "prompt is too long: N tokens > M
// maximum", the max_tokens-does-not-fit variant, and Bedrock's "Input is too
// long for requested model".
func isContextWindow(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "input is too long") ||
		strings.Contains(m, "too many input tokens") ||
		strings.Contains(m, "exceed context limit") ||
		strings.Contains(m, "exceeds the context window")
}

// errorBody reads {"type":"error","error":{"type":...,"message":...}}.
func errorBody(raw string) (typ, msg string) {
	var body struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(raw), &body) != nil {
		return "", ""
	}
	return body.Error.Type, body.Error.Message
}
