package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/apptest"
	"github.com/switchyard/switchyard/internal/vendortest"
)

// A LiteLLM proxy's config.yaml, unchanged but for its endpoints (local
// vendor replays), started as Switchyard: an OpenAI SDK client written for
// the LiteLLM proxy works against it as it is. The config is LiteLLM's
// documented fallback example (https://docs.litellm.ai/docs/proxy/reliability,
// Quick Start, two Azure model groups) with the master key of its
// https://docs.litellm.ai/docs/proxy/configs Quick Start. The client is the
// one of LiteLLM's docs: base URL http://<proxy>:4000 (no /v1), the master
// key, model names as the config names them.
func TestLiteLLMConfigServesTheOpenAISDKUnchanged(t *testing.T) {
	small, gpt4 := vendortest.OpenAI(t, "azure gpt-3.5-turbo"), vendortest.OpenAI(t, "azure gpt-4-ca")
	base := func(s *vendortest.Server) string { return strings.TrimSuffix(s.URL, "/v1") }
	config := `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/<your-deployment-name>
      api_base: ` + base(small) + `
      api_key: <your-azure-api-key>
      rpm: 6      # Rate limit for this deployment: in requests per minute (rpm)
  - model_name: gpt-4
    litellm_params:
      model: azure/gpt-4-ca
      api_base: ` + base(gpt4) + `
      api_key: <your-azure-api-key>
      rpm: 6

router_settings:
  fallbacks: [{"gpt-3.5-turbo": ["gpt-4"]}]

general_settings: 
  master_key: sk-1234 # [OPTIONAL] Only use this if you to require all calls to contain this key (Authorization: Bearer sk-1234)
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
	env := baseEnv(t)
	env.ConfigPath = path
	env.EmbeddedAddr = "127.0.0.1:-1"
	env.HTTPAddr = "127.0.0.1:0"
	var addr string
	apptest.Start(t, env, app.Options{OnGateway: func(a string) { addr = a }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client := openai.NewClient(option.WithAPIKey("sk-1234"), option.WithBaseURL("http://"+addr), option.WithMaxRetries(0))
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("this is a test request, write a short poem")}

	r, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-3.5-turbo", Messages: msgs})
	require.NoError(t, err)
	require.Equal(t, "answer from azure gpt-3.5-turbo", r.Choices[0].Message.Content)
	require.Equal(t, "gpt-3.5-turbo", r.Model, "the model as the client named it")

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4", Messages: msgs})
	var text strings.Builder
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "answer from azure gpt-4-ca", text.String())

	models, err := client.Models.List(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range models.Data {
		names = append(names, m.ID)
	}
	slices.Sort(names)
	require.Equal(t, []string{"gpt-3.5-turbo", "gpt-4"}, names, "the config's model names, as LiteLLM's /models lists them")

	// The fallback of the example: gpt-3.5-turbo's deployment down, gpt-4
	// answers the same request.
	small.Always(vendortest.OpenAIServerError)
	r, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-3.5-turbo", Messages: msgs})
	require.NoError(t, err)
	require.Equal(t, "answer from azure gpt-4-ca", r.Choices[0].Message.Content)

	// The master key is required, as LiteLLM requires it.
	other := openai.NewClient(option.WithAPIKey("sk-not-the-master-key"), option.WithBaseURL("http://"+addr+"/v1"), option.WithMaxRetries(0))
	_, err = other.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4", Messages: msgs})
	var apiErr *openai.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, 401, apiErr.StatusCode)
}
