package openai

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/switchyard/switchyard/pkg/llm"
	"github.com/switchyard/switchyard/pkg/llm/catalog"
)

// Defaults.
const (
	DefaultBaseURL         = "https://api.openai.com/v1"
	DefaultName            = "openai"
	DefaultAzureAPIVersion = "2024-10-21"
	// DefaultMaxIdleConnsPerHost is the idle connection pool per host of
	// the default transport (see Options.HTTPClient).
	DefaultMaxIdleConnsPerHost = 256
)

// defaultHTTPClient serves Clients built without Options.HTTPClient. One
// transport for all of them, so connections to one host are pooled across
// deployments.
var defaultHTTPClient = sync.OnceValue(func() *http.Client {
	dt, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Client{} // the program replaced it: use what it chose
	}
	tr := dt.Clone()
	tr.MaxIdleConns = 0 // no limit across hosts; per host below
	tr.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	return &http.Client{Transport: tr}
})

// Options configures a Client. Only APIKey is needed for OpenAI proper; a
// compatible server needs Preset or BaseURL; Azure needs AzureEndpoint.
type Options struct {
	// Preset names an OpenAI-compatible vendor (see Preset). It supplies
	// BaseURL, Name and LegacyMaxTokens where those are unset. "azure"
	// requires AzureEndpoint.
	Preset string
	// APIKey is sent as "Authorization: Bearer <key>" ("api-key: <key>" for
	// Azure). It is never logged and never put into errors: vendor messages
	// that echo it are redacted. Local servers need none.
	APIKey string
	// BaseURL of the API, up to and including the version segment.
	// Default: the preset's URL, else https://api.openai.com/v1.
	BaseURL string
	// Organization and Project set OpenAI's OpenAI-Organization and
	// OpenAI-Project headers when not empty.
	Organization string
	Project      string
	// Headers are added to every request (e.g. OpenRouter's HTTP-Referer).
	// Values of credential-like headers (Authorization, *key*, *token*,
	// *secret*) are redacted from errors like the API key.
	Headers map[string]string
	// HTTPClient makes the calls. Default: a client without a timeout (the
	// context bounds each call) on a transport shared by every Client of
	// this package: a clone of http.DefaultTransport that keeps up to
	// DefaultMaxIdleConnsPerHost idle connections per host, where
	// http.DefaultTransport keeps 2, so that a worker running many streams
	// to one vendor reuses connections instead of dialling (and, over TLS,
	// handshaking) for most calls. A client given here is used as is.
	HTTPClient *http.Client
	// Name of the vendor in errors and metrics. Default: the preset's name,
	// "azure" when AzureEndpoint is set, else "openai".
	Name string

	// AzureEndpoint (https://<resource>.openai.azure.com) switches to Azure
	// OpenAI: requests go to
	// <endpoint>/openai/deployments/<deployment>/chat/completions?api-version=<v>
	// with the key in the "api-key" header.
	AzureEndpoint string
	// AzureDeployment is the deployment name. Default: the request's Model,
	// so one Client can serve several deployments.
	AzureDeployment string
	// AzureAPIVersion. Default: DefaultAzureAPIVersion.
	AzureAPIVersion string

	// LegacyMaxTokens sends Request.MaxTokens as "max_tokens" instead of
	// "max_completion_tokens". OpenAI proper (and Azure, Groq) take
	// max_completion_tokens, which reasoning models require; most other
	// compatible servers only know max_tokens. Presets set it as needed.
	LegacyMaxTokens bool
	// NoStreamUsage stops sending stream_options.include_usage, for old
	// compatible servers that reject the field. Usage is then not reported.
	NoStreamUsage bool
	// Catalog answers Capabilities. Default: catalog.Default.
	Catalog *catalog.Catalog
}

// Client is an llm.Provider for one OpenAI-compatible endpoint. It is safe
// for concurrent use.
type Client struct {
	name            string
	chat            oai.ChatCompletionService
	files           oai.FileService  // the Batch API's input and output files
	batches         oai.BatchService // the Batch API
	azure           bool             // Azure OpenAI: no Batch API here
	azureDeployBase string           // Azure without a fixed deployment: base up to /deployments/
	legacyMaxTokens bool
	noStreamUsage   bool
	catalog         catalog.Catalog
	secrets         []string // values redacted from error messages
	now             func() time.Time
}

var (
	_ llm.Provider           = (*Client)(nil)
	_ llm.Namer              = (*Client)(nil)
	_ llm.CapabilityReporter = (*Client)(nil)
)

// New returns a Client for opts. It makes no network call.
func New(opts Options) (*Client, error) {
	name := opts.Name
	if opts.Preset != "" {
		p, ok := Preset(opts.Preset)
		if !ok {
			return nil, fmt.Errorf("openai: unknown preset %q (known: %s)", opts.Preset, strings.Join(PresetNames(), ", "))
		}
		if strings.EqualFold(opts.Preset, "azure") && opts.AzureEndpoint == "" {
			return nil, errors.New("openai: preset azure needs AzureEndpoint")
		}
		opts.BaseURL = cmp.Or(opts.BaseURL, p.BaseURL)
		opts.LegacyMaxTokens = opts.LegacyMaxTokens || p.LegacyMaxTokens
		name = cmp.Or(name, strings.ToLower(strings.TrimSpace(opts.Preset)))
	}
	if opts.AzureEndpoint != "" {
		name = cmp.Or(name, "azure")
	}
	name = cmp.Or(name, DefaultName)

	c := &Client{
		name:            name,
		legacyMaxTokens: opts.LegacyMaxTokens,
		noStreamUsage:   opts.NoStreamUsage,
		catalog:         catalog.Default,
		now:             time.Now,
	}
	if opts.Catalog != nil {
		c.catalog = *opts.Catalog
	}
	if opts.APIKey != "" {
		c.secrets = append(c.secrets, opts.APIKey)
	}
	for k, v := range opts.Headers {
		if len(v) >= 8 && secretHeader(k) {
			c.secrets = append(c.secrets, v)
		}
	}

	hc := opts.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	ro := []option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // the policy layer owns retries
		option.WithMiddleware(normaliseErrorBody),
	}

	endpoint, err := c.endpoint(&opts)
	if err != nil {
		return nil, err
	}
	ro = append(ro, endpoint...)
	for k, v := range opts.Headers {
		ro = append(ro, option.WithHeader(k, v))
	}
	// NewChatCompletionService, unlike NewClient, does not read OPENAI_*
	// environment variables: configuration comes from Options only.
	c.chat = oai.NewChatCompletionService(ro...)
	c.files, c.batches = oai.NewFileService(ro...), oai.NewBatchService(ro...)
	c.azure = opts.AzureEndpoint != ""
	return c, nil
}

// endpoint returns the options that address the server: an Azure resource
// (its deployment path, api-version and api-key header) or an
// OpenAI-compatible base URL with its bearer key, organization and project.
func (c *Client) endpoint(opts *Options) ([]option.RequestOption, error) {
	if opts.AzureEndpoint != "" {
		ep, err := parseBase(opts.AzureEndpoint, "AzureEndpoint")
		if err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(ep.String(), "/") + "/openai/deployments/"
		var ro []option.RequestOption
		if opts.AzureDeployment != "" {
			ro = append(ro, option.WithBaseURL(base+url.PathEscape(opts.AzureDeployment)+"/"))
		} else {
			c.azureDeployBase = base
			ro = append(ro, option.WithBaseURL(base)) // replaced per request
		}
		ro = append(ro, option.WithQuery("api-version", cmp.Or(opts.AzureAPIVersion, DefaultAzureAPIVersion)))
		if opts.APIKey != "" {
			ro = append(ro, option.WithHeader("api-key", opts.APIKey))
		}
		return ro, nil
	}
	base, err := parseBase(cmp.Or(opts.BaseURL, DefaultBaseURL), "BaseURL")
	if err != nil {
		return nil, err
	}
	ro := []option.RequestOption{option.WithBaseURL(base.String())}
	if opts.APIKey != "" {
		ro = append(ro, option.WithAPIKey(opts.APIKey))
	}
	if opts.Organization != "" {
		ro = append(ro, option.WithOrganization(opts.Organization))
	}
	if opts.Project != "" {
		ro = append(ro, option.WithProject(opts.Project))
	}
	return ro, nil
}

// ProviderName returns the vendor name used in errors and metrics.
func (c *Client) ProviderName() string { return c.name }

// Capabilities returns what the catalogue knows of model; zero when unknown.
func (c *Client) Capabilities(model string) llm.Capabilities {
	m, ok := c.catalog.Lookup(model)
	if !ok {
		return llm.Capabilities{}
	}
	return m.Capabilities()
}

// Stream starts a streamed chat completion. It returns once the first chunk
// of output (text, a tool call, or the end of the answer) has arrived, so an
// error here is always a failure before any output; see the package doc.
func (c *Client) Stream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	if req == nil {
		return nil, c.errorf(llm.KindBadRequest, "nil request")
	}
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	var ro []option.RequestOption
	if c.azureDeployBase != "" {
		if req.Model == "" {
			return nil, c.errorf(llm.KindBadRequest, "azure: no deployment: set AzureDeployment or the request's model")
		}
		ro = append(ro, option.WithBaseURL(c.azureDeployBase+url.PathEscape(req.Model)+"/"))
	}
	// The raw response lets stream decode the events itself (see stream).
	var raw *http.Response
	ro = append(ro, option.WithResponseInto(&raw))
	s := &stream{c: c, ctx: ctx, sdk: c.chat.NewStreaming(ctx, params, ro...)}
	s.queue = s.qbuf[:0]
	if s.sdk.Err() == nil && raw != nil {
		// The decoder reads through a lineReader, so that stream can tell
		// which events have arrived already (see coalesce).
		s.lr = newLineReader(raw.Body)
		s.dec = ssestream.NewDecoder(&http.Response{Header: raw.Header, Body: s.lr})
	}
	if err := s.prefetch(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func parseBase(raw, field string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai: %s %q is not an absolute http(s) URL", field, raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

func secretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "key", "token", "secret", "cookie", "password"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
