package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"cloud.google.com/go/auth"
	"github.com/anthropics/anthropic-sdk-go/option"
)

// vertexVersion is the anthropic_version Vertex AI wants in the body.
const vertexVersion = "vertex-2023-10-16"

// VertexOptions routes a Client to Claude on Google Vertex AI.
//
// The SDK's own vertex package is not used: it needs golang.org/x/oauth2 and
// Application Default Credentials at construction, which this module does
// not carry. This is the same adaptation (URL and body rewrite, bearer
// token) with an explicit token source.
type VertexOptions struct {
	// Project and Region select the endpoint; Region "global" uses
	// aiplatform.googleapis.com, others {region}-aiplatform.googleapis.com.
	Project string
	Region  string
	// TokenProvider supplies the OAuth access token for each request
	// (e.g. a *auth.Credentials from cloud.google.com/go/auth/credentials).
	// Nil means the HTTPClient authenticates requests itself.
	TokenProvider auth.TokenProvider
}

// vertexOptions returns the request options for Vertex.
func vertexOptions(v *VertexOptions, baseURL string) ([]option.RequestOption, error) {
	if v.Project == "" || v.Region == "" {
		return nil, fmt.Errorf("vertex: project and region are required")
	}
	if baseURL == "" {
		baseURL = fmt.Sprintf("https://%s-aiplatform.googleapis.com/", v.Region)
		if v.Region == "global" {
			baseURL = "https://aiplatform.googleapis.com/"
		}
	}
	return []option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithMiddleware(vertexMiddleware(v)),
	}, nil
}

func vertexMiddleware(v *VertexOptions) option.Middleware {
	return func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/messages" && r.Body != nil {
			raw, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				return nil, err
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(raw, &body); err != nil {
				return nil, fmt.Errorf("vertex: request body: %w", err)
			}
			var model string
			_ = json.Unmarshal(body["model"], &model)
			var stream bool
			_ = json.Unmarshal(body["stream"], &stream)
			delete(body, "model")
			if _, ok := body["anthropic_version"]; !ok {
				body["anthropic_version"] = json.RawMessage(`"` + vertexVersion + `"`)
			}
			if raw, err = json.Marshal(body); err != nil {
				return nil, err
			}
			verb := "rawPredict"
			if stream {
				verb = "streamRawPredict"
			}
			r.URL.Path = fmt.Sprintf("/v1/projects/%s/locations/%s/publishers/anthropic/models/%s:%s",
				url.PathEscape(v.Project), url.PathEscape(v.Region), url.PathEscape(model), verb)
			r.URL.RawPath = ""
			r.Body = io.NopCloser(bytes.NewReader(raw))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
			r.ContentLength = int64(len(raw))
		}
		r.Header.Del("X-Api-Key")
		if v.TokenProvider != nil {
			tok, err := v.TokenProvider.Token(r.Context())
			if err != nil {
				return nil, fmt.Errorf("vertex: token: %w", err)
			}
			r.Header.Set("Authorization", "Bearer "+tok.Value)
		}
		return next(r)
	}
}
