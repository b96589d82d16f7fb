package gateway_test

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	sse "github.com/tmaxmax/go-sse"

	"github.com/switchyard/switchyard/pkg/llm/mock"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func mockSlow(tokens int, delay time.Duration) mock.Config {
	return mock.Config{Tokens: tokens, ChunkDelay: delay}
}

func anthropicModelListParams() anthropic.ModelListParams { return anthropic.ModelListParams{} }

func sseRead(r io.Reader) func(func(sse.Event, error) bool) { return sse.Read(r, nil) }

func itoa(n int) string { return strconv.Itoa(n) }
