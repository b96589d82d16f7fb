package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
)

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
