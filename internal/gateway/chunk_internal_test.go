package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContentChunkIsTheMarshalledChunk(t *testing.T) {
	t.Parallel()
	for _, usage := range []bool{false, true} {
		s := &openAIStream{id: "chatcmpl-x\"y", model: "gpt-4o-mini", created: 1700000000, usage: usage}
		for _, text := range []string{"hello", " wörld\n\"<q>\"", ""} {
			want := s.delta(oaDelta{Content: &text}, nil)
			require.Equal(t, string(want.data), string(s.contentChunk(text).data))
		}
	}
}
