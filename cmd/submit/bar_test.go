package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lastFrame is what a terminal shows after the bar's output: the text after
// the last carriage return.
func lastFrame(s string) string {
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func TestBatchBarCountsAreRightFromTheFirstLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := newBar(4, &out, func() time.Time { return now })
	b.add(1, 0)
	require.Contains(t, lastFrame(out.String()), "ok 1 · failed 0")
	require.Contains(t, lastFrame(out.String()), "(1/4,", "the count moves with the description")

	// Within 100ms nothing is drawn; then both move together.
	now = now.Add(10 * time.Millisecond)
	b.add(1, 1)
	require.Contains(t, lastFrame(out.String()), "(1/4,")
	now = now.Add(100 * time.Millisecond)
	b.add(2, 1)
	require.Contains(t, lastFrame(out.String()), "ok 2 · failed 1")
	require.Contains(t, lastFrame(out.String()), "(3/4,")
}
