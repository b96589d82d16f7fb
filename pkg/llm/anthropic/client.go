package anthropic

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/switchyard/switchyard/pkg/llm"
)

// ProviderName is the name this provider reports in errors and metrics.
const ProviderName = "anthropic"

// DefaultMaxTokens is sent as max_tokens (which Anthropic requires) when
// neither the request nor Options.MaxTokensDefault sets one and the model is
// not in the capability table.
const DefaultMaxTokens = 4096

// Options configures a Client. The zero value plus an APIKey talks to
// https://api.anthropic.com.
type Options struct {
	// APIKey is sent as x-api-key. It never appears in errors.
	APIKey string
	// AuthToken, if set, is sent as "Authorization: Bearer ..." instead of
	// (or as well as) the API key, for gateways that want a bearer token.
	AuthToken string
	// BaseURL overrides the API root (default https://api.anthropic.com/).
	BaseURL string
	// Headers are added to every request.
	Headers map[string]string
	// HTTPClient is used for every call (default: a client without timeout;
	// the caller's context bounds each stream).
	HTTPClient *http.Client
	// Version overrides the anthropic-version header (SDK default
	// "2023-06-01").
	Version string
	// Betas are sent, comma-joined, as the anthropic-beta header.
	Betas []string
	// MaxTokensDefault is the max_tokens sent when a request has none
	// (Anthropic requires the field). Default: DefaultMaxTokens, or the
	// model's output limit when that is smaller: the request's MaxOutput
	// (the router's record of the deployment's model), else Capabilities'.
	MaxTokensDefault int
	// Vertex, when set, sends the calls to Claude on Google Vertex AI
	// instead of the Anthropic API; APIKey is then not needed.
	Vertex *VertexOptions
	// Bedrock, when set, sends the calls to Claude on Amazon Bedrock,
	// SigV4-signed with its static AWS credentials; APIKey and AuthToken are
	// then ignored (never sent to AWS). Vertex and Bedrock are exclusive.
	Bedrock *BedrockOptions
}

// Client is an llm.Provider for Anthropic. It is safe for concurrent use.
type Client struct {
	sdk  sdk.Client
	opts Options
	// secrets are scrubbed from every error message, belt and braces.
	secrets []string
	now     func() time.Time
}

var (
	_ llm.Provider           = (*Client)(nil)
	_ llm.Namer              = (*Client)(nil)
	_ llm.CapabilityReporter = (*Client)(nil)
)

// New returns a Client. It does no network I/O. It fails when no credential
// is configured.
func New(opts Options) (*Client, error) {
	if opts.APIKey == "" && opts.AuthToken == "" && opts.Vertex == nil && opts.Bedrock == nil {
		return nil, &llm.Error{Kind: llm.KindAuth, Provider: ProviderName, Message: "no API key configured"}
	}
	if opts.Vertex != nil && opts.Bedrock != nil {
		return nil, &llm.Error{Kind: llm.KindBadRequest, Provider: ProviderName, Message: "vertex and bedrock are exclusive"}
	}
	if opts.Bedrock != nil {
		if err := opts.Bedrock.validate(); err != nil {
			kind := llm.KindBadRequest
			if errors.Is(err, errBedrockCredentials) {
				kind = llm.KindAuth
			}
			return nil, &llm.Error{Kind: kind, Provider: ProviderName, Message: err.Error()}
		}
		// Anthropic credentials are not for AWS's eyes.
		opts.APIKey, opts.AuthToken = "", ""
	}
	if opts.Vertex != nil {
		// Vertex authenticates with an OAuth bearer token, never x-api-key.
		opts.APIKey = ""
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	ro := []option.RequestOption{
		// Credentials and base URL come from Options only, never from the
		// SDK's environment autoload (ANTHROPIC_API_KEY, profiles, ...).
		option.WithoutEnvironmentDefaults(),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
	}
	if opts.APIKey != "" {
		ro = append(ro, option.WithAPIKey(opts.APIKey))
	}
	if opts.AuthToken != "" {
		ro = append(ro, option.WithAuthToken(opts.AuthToken))
	}
	if opts.BaseURL != "" && opts.Bedrock == nil && opts.Vertex == nil {
		ro = append(ro, option.WithBaseURL(opts.BaseURL))
	}
	if opts.Version != "" {
		ro = append(ro, option.WithHeader("anthropic-version", opts.Version))
	}
	if len(opts.Betas) > 0 {
		ro = append(ro, option.WithHeader("anthropic-beta", strings.Join(opts.Betas, ",")))
	}
	for k, v := range opts.Headers {
		ro = append(ro, option.WithHeader(k, v))
	}
	if opts.Vertex != nil {
		vo, err := vertexOptions(opts.Vertex, opts.BaseURL, hc)
		if err != nil {
			return nil, &llm.Error{Kind: llm.KindBadRequest, Provider: ProviderName, Message: err.Error()}
		}
		// Last, so the rewrite runs closest to the wire.
		ro = append(ro, vo...)
	}
	var awsSecrets []string
	if b := opts.Bedrock; b != nil {
		// Last, so signing runs closest to the wire.
		ro = append(ro, bedrockOptions(b, opts.BaseURL)...)
		awsSecrets = []string{b.SecretAccessKey, b.SessionToken}
	}
	c := &Client{sdk: sdk.NewClient(ro...), opts: opts, now: time.Now}
	for _, s := range append([]string{opts.APIKey, opts.AuthToken}, awsSecrets...) {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	return c, nil
}

// ProviderName implements llm.Namer.
func (c *Client) ProviderName() string { return ProviderName }

// Stream implements llm.Provider. It returns once the first chunk of the
// answer has arrived, so a failure before any output (HTTP 4xx/5xx, an
// error event, a cut connection) is returned here as an *llm.Error and a
// Stream always has output to give.
func (c *Client) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	params, err := c.buildParams(req)
	if err != nil {
		return nil, err
	}
	s := &stream{
		raw:     c.sdk.Messages.NewStreaming(ctx, params),
		ctx:     ctx,
		secrets: c.secrets,
		now:     c.now,
		tools:   map[int64]int{},
	}
	if !s.prime() {
		err := s.Err()
		_ = s.Close()
		if err == nil {
			// prime only fails without an error on a clean end with no
			// output, which Next reports; keep the contract simple.
			return s, nil
		}
		return nil, err
	}
	return s, nil
}

// maxTokens picks max_tokens for a request.
func (c *Client) maxTokens(req *llm.Request) int64 {
	if req.MaxTokens > 0 {
		return int64(req.MaxTokens)
	}
	if c.opts.MaxTokensDefault > 0 {
		return int64(c.opts.MaxTokensDefault)
	}
	// 4096 fits every model; a model known to allow less gets its maximum.
	if mo := cmp.Or(req.MaxOutput, c.Capabilities(req.Model).MaxOutput); mo > 0 && mo < DefaultMaxTokens {
		return int64(mo)
	}
	return DefaultMaxTokens
}
