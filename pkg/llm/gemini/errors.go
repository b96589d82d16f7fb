package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"google.golang.org/genai"

	"github.com/switchyard/switchyard/pkg/llm"
)

// classify turns any failure of a streamGenerateContent call into an
// *llm.Error. midStream says whether output was already handed out. The
// message is the vendor's error message (or a fixed text), scrubbed of every
// configured secret.
func classify(ctx context.Context, err error, midStream bool, secrets []string) *llm.Error {
	if le, ok := errors.AsType[*llm.Error](err); ok {
		return le
	}
	e := &llm.Error{Provider: ProviderName, MidStream: midStream}
	if apiErr, ok := errors.AsType[genai.APIError](err); ok {
		classifyAPI(e, apiErr)
		e.Err = errors.New(llm.Scrub(apiErr.Error(), secrets))
	} else if apiErr, ok := errors.AsType[*genai.APIError](err); ok && apiErr != nil {
		classifyAPI(e, *apiErr)
		e.Err = errors.New(llm.Scrub(apiErr.Error(), secrets))
	} else {
		llm.ClassifyTransport(ctx, e, err)
		e.Err = llm.Scrubbed{Err: err, Secrets: secrets}
	}
	e.Message = llm.Scrub(e.Message, secrets)
	if e.Message == "" {
		e.Message = e.Kind.String()
	}
	return e
}

// classifyAPI classifies a Google API error ({"error":{"code","message",
// "status","details"}}), from an HTTP error response or inside the stream.
func classifyAPI(e *llm.Error, a genai.APIError) {
	e.Status = a.Code
	e.Code = a.Status
	e.Message = a.Message
	msg := strings.ToLower(a.Message)
	switch {
	case a.Code == 429 || a.Status == "RESOURCE_EXHAUSTED":
		e.Kind = llm.KindRateLimited
		e.RetryAfter = retryDelay(a.Details)
	case a.Code == 401 || a.Code == 403 || a.Status == "UNAUTHENTICATED" || a.Status == "PERMISSION_DENIED" ||
		hasReason(a.Details, "API_KEY_INVALID"):
		// An invalid key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
		e.Kind = llm.KindAuth
	case a.Code >= 500 || a.Status == "UNAVAILABLE" || a.Status == "INTERNAL" || a.Status == "DEADLINE_EXCEEDED":
		e.Kind = llm.KindUnavailable
		e.RetryAfter = retryDelay(a.Details)
	case strings.Contains(msg, "exceeds the maximum number of tokens") ||
		strings.Contains(msg, "input token count") ||
		strings.Contains(msg, "exceeds the maximum context length"):
		e.Kind = llm.KindContextWindow
	case a.Code >= 400 || a.Status != "":
		e.Kind = llm.KindBadRequest
	default:
		e.Kind = llm.KindUnknown
	}
}

// retryDelay reads google.rpc.RetryInfo {"retryDelay": "37s"} from details.
func retryDelay(details []map[string]any) time.Duration {
	for _, d := range details {
		if t, _ := d["@type"].(string); !strings.HasSuffix(t, "google.rpc.RetryInfo") {
			continue
		}
		switch v := d["retryDelay"].(type) {
		case string:
			if dur, err := time.ParseDuration(v); err == nil && dur > 0 {
				return dur
			}
		case map[string]any: // {"seconds": 37, "nanos": 0}
			var pd struct {
				Seconds json.Number `json:"seconds"`
				Nanos   int64       `json:"nanos"`
			}
			b, _ := json.Marshal(v)
			if json.Unmarshal(b, &pd) == nil {
				secs, _ := pd.Seconds.Int64()
				if dur := time.Duration(secs)*time.Second + time.Duration(pd.Nanos); dur > 0 {
					return dur
				}
			}
		}
	}
	return 0
}

// hasReason reports whether details hold a google.rpc.ErrorInfo with reason.
func hasReason(details []map[string]any, reason string) bool {
	for _, d := range details {
		if t, _ := d["@type"].(string); strings.HasSuffix(t, "google.rpc.ErrorInfo") && d["reason"] == reason {
			return true
		}
	}
	return false
}

// marshalArgs renders function call arguments as the JSON object text of a
// tool call.
func marshalArgs(args map[string]any) (string, error) {
	b, err := json.Marshal(args)
	return string(b), err
}
