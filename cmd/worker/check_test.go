package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/internal/vendortest"
)

// A vendor may echo the key in another form than it was sent: none of them
// reaches the table.
func TestCheckNeverPrintsAnEchoedKeyInAnyForm(t *testing.T) {
	const key = "sk-check-SECRET+/0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		msg := fmt.Sprintf("bad key %s (%s, %s, %s)", strings.ToUpper(key), url.QueryEscape(key), base64.StdEncoding.EncodeToString([]byte(key)), strings.ToLower(key))
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": "invalid_api_key"}})
		w.Write(b) //nolint:errcheck // test server
	}))
	defer srv.Close()
	t.Setenv("CHECK_KEY", key)
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(fmt.Sprintf(`
groups:
  g:
    deployments:
      - {name: real, provider: openai, model: gpt-4o-mini, base_url: "%s/v1", api_key: "${CHECK_KEY}"}
`, srv.URL)), 0o600))
	var out bytes.Buffer
	require.Equal(t, 1, runCheck(context.Background(), config.Env{ConfigPath: models}, &out))
	got := strings.ToLower(out.String())
	require.Contains(t, got, "[redacted]")
	for _, form := range []string{key, url.QueryEscape(key), base64.StdEncoding.EncodeToString([]byte(key))} {
		require.NotContains(t, got, strings.ToLower(form), out.String())
	}
}

func TestCheckPrintsWhatWorksWithoutKeys(t *testing.T) {
	const key = "sk-check-SECRET-0123456789"
	// A server that refuses the key the way OpenAI does, echoing it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"invalid_request_error","code":"invalid_api_key"}}`, key)
	}))
	defer srv.Close()
	t.Setenv("CHECK_KEY", key)
	models := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(models, []byte(fmt.Sprintf(`
groups:
  g:
    deployments:
      - {name: fake, provider: mock}
      - {name: real, provider: openai, model: gpt-4o-mini, base_url: "%s/v1", api_key: "${CHECK_KEY}"}
`, srv.URL)), 0o600))
	var out bytes.Buffer
	code := runCheck(context.Background(), config.Env{ConfigPath: models}, &out)
	require.Equal(t, 1, code, out.String())
	require.Regexp(t, `g\s+fake\s+\S*\s+ok`, out.String())
	require.Regexp(t, `g\s+real\s+gpt-4o-mini\s+FAIL.*auth`, out.String())
	require.Contains(t, out.String(), "1 deployment(s) failed")
	require.NotContains(t, out.String(), key)
}

// worker --check and --print-config on a LiteLLM proxy config.yaml: the
// check probes its deployments (by their LiteLLM model names' groups) and
// names what has no effect; the printed native file never holds the key.
func TestCheckAndPrintConfigOnALiteLLMFile(t *testing.T) {
	oa := vendortest.OpenAI(t, "openai")
	oa.ForModel("bad-model", vendortest.OpenAIAuth)
	t.Setenv("LITELLM_CHECK_KEY", "sk-litellm-check-SECRET")
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params: {model: openai/gpt-3.5-turbo, api_base: "%[1]s", api_key: os.environ/LITELLM_CHECK_KEY}
  - model_name: bad-model
    litellm_params: {model: openai/bad-model, api_base: "%[1]s", api_key: os.environ/LITELLM_CHECK_KEY}
litellm_settings:
  success_callback: ["langfuse"]
`, oa.URL)), 0o600))
	env := config.Env{ConfigPath: path}
	var out bytes.Buffer
	require.Equal(t, 1, runCheck(context.Background(), env, &out), out.String())
	require.Contains(t, out.String(), "line 8: litellm_settings.success_callback: callbacks to hosted logging services are not run")
	require.Regexp(t, `gpt-3-5-turbo\s+openai/gpt-3.5-turbo\s+gpt-3.5-turbo\s+ok`, out.String())
	require.Regexp(t, `bad-model\s+openai/bad-model\s+bad-model\s+FAIL.*auth`, out.String())
	require.NotContains(t, out.String(), "SECRET")

	out.Reset()
	require.Equal(t, 0, runPrintConfig(env, &out))
	require.Contains(t, out.String(), `api_key: "${LITELLM_CHECK_KEY}"`)
	require.Contains(t, out.String(), "gpt-3.5-turbo: gpt-3-5-turbo", "the LiteLLM name is kept as an alias")
	require.NotContains(t, out.String(), "SECRET")
}
