package worker

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

func unstoredMsg(id string, size int) *nats.Msg {
	m := nats.NewMsg("llm.res." + id + ".result")
	m.Header.Set(bus.HeaderMsgID, id)
	m.Data = make([]byte, size)
	return m
}

// TestUnstoredIsBounded: the memo of results that could not be stored
// holds at most unstoredCap messages and unstoredCapBytes bytes, dropping
// the oldest first, and forgets a message once it is stored.
func TestUnstoredIsBounded(t *testing.T) {
	t.Parallel()
	var u unstored
	for i := range unstoredCap + 10 {
		u.put(unstoredMsg(fmt.Sprint(i), 10), &bus.Result{ID: fmt.Sprint(i)})
	}
	require.Equal(t, unstoredCap, u.len())
	m, _ := u.get("0")
	require.Nil(t, m, "the oldest went first")
	m, res := u.get(fmt.Sprint(unstoredCap + 9))
	require.NotNil(t, m)
	require.Equal(t, fmt.Sprint(unstoredCap+9), res.ID)

	// By bytes: messages of a quarter of the limit each.
	var b unstored
	for i := range 6 {
		b.put(unstoredMsg(fmt.Sprint(i), unstoredCapBytes/4), &bus.Result{})
	}
	require.Equal(t, 3, b.len(), "three quarters and their headers fit, not four")
	require.LessOrEqual(t, b.bytes, unstoredCapBytes)

	// Put again replaces; forget drops.
	b.put(unstoredMsg("5", 1), &bus.Result{ID: "again"})
	require.Equal(t, 3, b.len())
	_, res = b.get("5")
	require.Equal(t, "again", res.ID)
	b.forget("5")
	m, _ = b.get("5")
	require.Nil(t, m)
	require.Equal(t, 2, b.len())
}
