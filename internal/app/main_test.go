package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine Run starts has an owner that waits for it: none may be
// left once the tests' workers have stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
