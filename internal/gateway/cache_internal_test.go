package gateway

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/bus"
)

func TestCacheControlNoCacheTurnsTheCacheOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header []string
		off    bool
	}{
		{nil, false},
		{[]string{"max-age=0"}, false},
		{[]string{"no-cache"}, true},
		{[]string{"private, No-Store"}, true},
		{[]string{"max-age=60", "no-cache"}, true},
	} {
		r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		for _, h := range tc.header {
			r.Header.Add("Cache-Control", h)
		}
		var req bus.Request
		honourNoCache(r, &req)
		if tc.off {
			require.NotNil(t, req.Cache, "%v", tc.header)
			require.False(t, *req.Cache)
		} else {
			require.Nil(t, req.Cache, "%v", tc.header)
		}
	}
}
