package worker

import (
	"errors"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/policy"
)

// codeOf maps an execution error to its wire code and whether retrying the
// job later may help.
func codeOf(err error) (bus.ErrorCode, bool) {
	if _, ok := errors.AsType[*invalid](err); ok {
		return bus.CodeInvalidRequest, false
	}
	if be, ok := errors.AsType[*bus.Error](err); ok {
		return be.Code, be.Retryable
	}
	if errors.Is(err, policy.ErrUnknownGroup) {
		return bus.CodeUnknownGroup, false
	}
	switch k := llm.KindOf(err); k {
	case llm.KindRateLimited:
		return bus.CodeRateLimited, true
	case llm.KindContextWindow:
		return bus.CodeContextWindowExceeded, false
	case llm.KindContentPolicy:
		return bus.CodeContentPolicy, false
	case llm.KindAuth:
		return bus.CodeAuth, false
	case llm.KindBadRequest:
		return bus.CodeInvalidRequest, false
	case llm.KindTimeout:
		return bus.CodeTimeout, true
	case llm.KindCancelled:
		return bus.CodeCancelled, false
	case llm.KindUnavailable, llm.KindConnection:
		return bus.CodeProviderUnavailable, true
	}
	return bus.CodeInternal, true
}
