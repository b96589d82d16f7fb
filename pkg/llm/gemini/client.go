package gemini

import (
	"context"
	"iter"
	"net/http"
	"strings"

	"cloud.google.com/go/auth"
	"google.golang.org/genai"

	"github.com/switchyard/switchyard/pkg/llm"
)

// ProviderName is the name this provider reports in errors and metrics.
const ProviderName = "gemini"

// Backends.
const (
	BackendGemini = "gemini" // the Gemini API (generativelanguage.googleapis.com)
	BackendVertex = "vertex" // Vertex AI (aiplatform.googleapis.com)
)

// Options configures a Client.
type Options struct {
	// APIKey is sent as x-goog-api-key. Required for the Gemini backend;
	// on Vertex it selects express mode. It never appears in errors.
	APIKey string
	// Backend is BackendGemini (default) or BackendVertex.
	Backend string
	// Project and Location select the Vertex AI project and region
	// (Vertex only; not with APIKey).
	Project  string
	Location string
	// Credentials authenticate Vertex AI calls. When neither Credentials,
	// APIKey nor HTTPClient is set on Vertex, the SDK looks up Application
	// Default Credentials at construction.
	Credentials *auth.Credentials
	// BaseURL overrides the API root (the SDK's HTTPOptions.BaseURL).
	BaseURL string
	// APIVersion overrides the API version (SDK default v1beta on Gemini,
	// v1beta1 on Vertex).
	APIVersion string
	// HTTPClient is used for every call. On Vertex, a caller-supplied client
	// is expected to authenticate its requests itself.
	HTTPClient *http.Client
	// Headers are added to every request.
	Headers map[string]string
}

// Client is an llm.Provider for Gemini. It is safe for concurrent use.
type Client struct {
	models  *genai.Models
	batches *genai.Batches // batch mode; nil on Vertex (see SupportsBatch)
	secrets []string
}

var (
	_ llm.Provider           = (*Client)(nil)
	_ llm.Namer              = (*Client)(nil)
	_ llm.CapabilityReporter = (*Client)(nil)
)

// New returns a Client. On the Gemini backend and on Vertex with an API key,
// Credentials or an HTTPClient it does no network I/O.
func New(ctx context.Context, opts Options) (*Client, error) {
	cc := &genai.ClientConfig{
		APIKey:      opts.APIKey,
		Project:     opts.Project,
		Location:    opts.Location,
		Credentials: opts.Credentials,
		HTTPClient:  opts.HTTPClient,
		HTTPOptions: genai.HTTPOptions{
			BaseURL:    opts.BaseURL,
			APIVersion: opts.APIVersion,
			// RetryOptions stays nil: the SDK then sends each request once.
		},
	}
	switch strings.ToLower(opts.Backend) {
	case "", BackendGemini:
		cc.Backend = genai.BackendGeminiAPI
		if opts.APIKey == "" {
			return nil, configError(llm.KindAuth, "an API key is required for the Gemini API backend")
		}
	case BackendVertex:
		cc.Backend = genai.BackendVertexAI
	default:
		return nil, configError(llm.KindBadRequest, "unknown backend %q (want %q or %q)", opts.Backend, BackendGemini, BackendVertex)
	}
	if len(opts.Headers) > 0 {
		cc.HTTPOptions.Headers = http.Header{}
		for k, v := range opts.Headers {
			cc.HTTPOptions.Headers.Set(k, v)
		}
	}
	c := &Client{}
	if opts.APIKey != "" {
		c.secrets = []string{opts.APIKey}
	}
	gc, err := genai.NewClient(ctx, cc)
	if err != nil {
		// The SDK's message dumps the whole ClientConfig, key included:
		// keep only the sentence before it.
		msg, _, _ := strings.Cut(err.Error(), ". ClientConfig:")
		msg, _, _ = strings.Cut(msg, " ClientConfig:")
		return nil, configError(llm.KindBadRequest, "%s", llm.Scrub(msg, c.secrets))
	}
	c.models = gc.Models
	if cc.Backend == genai.BackendGeminiAPI {
		c.batches = gc.Batches
	}
	return c, nil
}

// configError reports a Client that cannot be built.
func configError(kind llm.Kind, format string, args ...any) *llm.Error {
	e := llm.Errorf(kind, format, args...)
	e.Provider = ProviderName
	return e
}

// ProviderName implements llm.Namer.
func (c *Client) ProviderName() string { return ProviderName }

// Stream implements llm.Provider. It returns once the first chunk of the
// answer has arrived, so a failure before any output (HTTP 4xx/5xx, a
// blocked prompt, a cut connection) is returned here as an *llm.Error.
func (c *Client) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	contents, cfg, err := buildRequest(req)
	if err != nil {
		return nil, err
	}
	next, stop := iter.Pull2(c.models.GenerateContentStream(ctx, req.Model, contents, cfg))
	s := &stream{next: next, stop: stop, ctx: ctx, secrets: c.secrets}
	if !s.prime() {
		err := s.Err()
		_ = s.Close()
		return nil, err
	}
	return s, nil
}
