package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
)

// apiError is a failure answered before (or instead of) a job's result: a
// wire error plus what OpenAI's body adds (the offending parameter, a code
// of its own) and the status when it is not the code's.
type apiError struct {
	*bus.Error
	param  string
	code   string // OpenAI's error.code, when not the table's
	status int    // when not the table's
	// openAIType and anthropicType are the vendors' error.type, when not
	// the table's.
	openAIType, anthropicType string
	// retryAfter is the wait the Retry-After and retry-after-ms headers
	// say (0: none).
	retryAfter time.Duration
}

func newError(code bus.ErrorCode, format string, args ...any) *apiError {
	return &apiError{Error: &bus.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// invalidParam is OpenAI's 400 naming a request field.
func invalidParam(param, code, format string, args ...any) *apiError {
	e := newError(bus.CodeInvalidRequest, format, args...)
	e.param, e.code = param, code
	return e
}

// unsupported refuses a field the fleet cannot honour, in OpenAI's words.
func unsupportedParam(param string) *apiError {
	return invalidParam(param, "unsupported_parameter", "Unsupported parameter: '%s' is not supported by Switchyard.", param)
}

func unsupportedValue(param, value, only string) *apiError {
	return invalidParam(param, "unsupported_value", "Unsupported value: '%s' does not support %s. Only %s is supported.", param, value, only)
}

func unknownModel(model string) *apiError {
	e := newError(bus.CodeUnknownGroup, "The model `%s` does not exist or you do not have access to it.", model)
	e.param = "model"
	return e
}

// resultError is the failure of a job's result.
func resultError(r *bus.Result) *apiError {
	e := r.Error
	if e == nil {
		e = &bus.Error{Code: bus.CodeInternal, Message: "result without status ok and without error"}
	}
	ae := &apiError{Error: e}
	switch {
	case e.RetryAfterMS > 0 && (e.Code == bus.CodeRateLimited || e.Code == bus.CodeProviderUnavailable):
		// The provider's Retry-After, which the worker put in the result.
		ae.retryAfter = time.Duration(e.RetryAfterMS) * time.Millisecond
	case e.Code == bus.CodeRateLimited:
		ae.retryAfter = time.Second
	}
	return ae
}

// errorWriter writes failures in one vendor's shape.
type errorWriter func(w http.ResponseWriter, e *apiError)

func writeOpenAIError(w http.ResponseWriter, e *apiError) {
	status, body := openAIBody(e)
	writeErrorBody(w, status, e, body)
}

func openAIBody(e *apiError) (int, *bus.OpenAIErrorBody) {
	status, body := bus.OpenAIErrorOf(e.Error)
	if e.param != "" {
		p := e.param
		body.Error.Param = &p
	}
	if e.code != "" {
		c := e.code
		body.Error.Code = &c
	}
	if e.openAIType != "" {
		body.Error.Type = e.openAIType
	}
	if e.status != 0 {
		status = e.status
	}
	return status, body
}

func writeAnthropicError(w http.ResponseWriter, e *apiError) {
	status, body := bus.AnthropicErrorOf(e.Error)
	if e.status != 0 {
		status = e.status
	}
	if e.anthropicType != "" {
		body.Error.Type = e.anthropicType
	}
	writeErrorBody(w, status, e, body)
}

func writeErrorBody(w http.ResponseWriter, status int, e *apiError, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		// Retry-After is in whole seconds, rounded up so that a client
		// never comes back early; retry-after-ms, which the OpenAI and
		// Anthropic SDKs read first, is exact.
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
		h.Set("retry-after-ms", strconv.FormatInt(e.retryAfter.Milliseconds(), 10))
	}
	// The SDKs retry 5xx and 429 on their own; a cancelled or invalid job
	// must not be retried, whatever its status.
	if !e.Retryable && status >= 500 {
		h.Set("x-should-retry", "false")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body) // the client is gone
}
