package anthropic

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// headerTransport authenticates requests itself, as a caller's client may.
type headerTransport struct{ base http.RoundTripper }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer from-the-callers-client")
	return h.base.RoundTrip(r)
}

func TestVertexThroughSDK(t *testing.T) {
	t.Parallel()
	t.Run("caller's client authenticates", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, okStream())
		c := newClient(t, f, func(o *Options) {
			// An API key set as well must not reach Google.
			o.HTTPClient = &http.Client{Transport: headerTransport{http.DefaultTransport}}
			o.Vertex = &VertexOptions{Project: "proj-2", Region: "europe-west1"}
		})
		s, err := c.Stream(t.Context(), userReq("hi"))
		require.NoError(t, err)
		text, _, err := collect(t, s)
		require.NoError(t, err)
		require.Equal(t, "ok", text)
		require.Equal(t, "/v1/projects/proj-2/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict", f.path)
		require.Equal(t, "Bearer from-the-callers-client", f.header.Get("Authorization"))
		require.Empty(t, f.header.Get("X-Api-Key"))
	})
	t.Run("default endpoint and token", func(t *testing.T) {
		t.Parallel()
		tests := []struct{ region, host string }{
			{"us-east5", "us-east5-aiplatform.googleapis.com"},
			{"global", "aiplatform.googleapis.com"},
			{"eu", "aiplatform.eu.rep.googleapis.com"},
		}
		for _, tt := range tests {
			var host, authz string
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				host, authz = r.URL.Host, r.Header.Get("Authorization")
				return nil, errors.New("no network in tests")
			})}
			c, err := New(Options{HTTPClient: hc, Vertex: &VertexOptions{Project: "p", Region: tt.region, TokenProvider: staticToken("ya29.tok")}})
			require.NoError(t, err)
			_, err = c.Stream(t.Context(), userReq("hi"))
			require.Error(t, err)
			require.Equal(t, tt.host, host, tt.region)
			require.Equal(t, "Bearer ya29.tok", authz, tt.region)
		}
	})
}
