package gateway_test

import (
	"io"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func mockSlow(tokens int, delay time.Duration) mock.Config {
	return mock.Config{Tokens: tokens, ChunkDelay: delay}
}

func anthropicModelListParams() anthropic.ModelListParams { return anthropic.ModelListParams{} }
