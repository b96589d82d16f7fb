package worker

import (
	"errors"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// codeOf maps an execution error to its wire code and whether retrying the
// job later may help: bad input is invalid_request, a *bus.Error has its
// own code, and every other failure is mapped by the router's error table
// (policy.WireCode), the one place that gives an error kind its code.
func codeOf(err error) (bus.ErrorCode, bool) {
	if _, ok := errors.AsType[*invalid](err); ok {
		return bus.CodeInvalidRequest, false
	}
	if be, ok := errors.AsType[*bus.Error](err); ok {
		return be.Code, be.Retryable
	}
	code, retryable := policy.WireCode(err)
	return bus.ErrorCode(code), retryable
}
