package anthropic

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/oauth2adapt"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/vertex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// vertexVersion is the anthropic_version the SDK's vertex package puts in
// the body.
const vertexVersion = vertex.DefaultVersion

// VertexOptions routes a Client to Claude on Google Vertex AI through the
// SDK's own vertex package: POST /v1/projects/{Project}/locations/{Region}/
// publishers/anthropic/models/{model}:streamRawPredict, with the model moved
// from the body to the path and anthropic_version added to the body.
//
// Credentials are explicit: Application Default Credentials are never looked
// up, so construction makes no network call.
type VertexOptions struct {
	// Project and Region select the endpoint; Region "global" uses
	// aiplatform.googleapis.com, "us" and "eu" the multi-region endpoints,
	// others {region}-aiplatform.googleapis.com. Options.BaseURL overrides
	// the host.
	Project string
	Region  string
	// TokenProvider supplies the OAuth access token for each request
	// (e.g. a *auth.Credentials from cloud.google.com/go/auth/credentials).
	// Nil means Options.HTTPClient authenticates requests itself.
	TokenProvider auth.TokenProvider
}

// errNoTokenSource is what the placeholder token source says; it is never
// asked for a token, since without a TokenProvider the caller's client
// replaces the one that would.
var errNoTokenSource = errors.New("vertex: no token provider configured")

type noTokenSource struct{}

func (noTokenSource) Token() (*oauth2.Token, error) { return nil, errNoTokenSource }

// vertexOptions returns the request options for Vertex. They must come after
// Options.HTTPClient's option (the SDK wraps that client with the OAuth
// transport) and last among middleware, so the rewrite runs closest to the
// wire.
func vertexOptions(v *VertexOptions, baseURL string, hc *http.Client) (ro []option.RequestOption, err error) {
	if v.Project == "" || v.Region == "" {
		return nil, fmt.Errorf("vertex: project and region are required")
	}
	var ts oauth2.TokenSource = noTokenSource{}
	if v.TokenProvider != nil {
		ts = oauth2adapt.TokenSourceFromTokenProvider(v.TokenProvider)
	}
	creds := &google.Credentials{ProjectID: v.Project, TokenSource: ts}
	// WithCredentials panics when Google's HTTP transport cannot be built.
	defer func() {
		if r := recover(); r != nil {
			ro, err = nil, fmt.Errorf("vertex: %v", r)
		}
	}()
	// The context only seeds the transport the SDK builds for callers
	// without a client of their own; New always passes one.
	ro = append(ro, vertex.WithCredentials(context.Background(), v.Region, v.Project, creds))
	if v.TokenProvider == nil {
		// Passed after the vertex option, the caller's client replaces the
		// OAuth-wrapped one: it authenticates requests itself.
		ro = append(ro, option.WithHTTPClient(hc))
	}
	if baseURL != "" {
		ro = append(ro, option.WithBaseURL(baseURL))
	}
	return ro, nil
}
