package anthropic

// The fixtures below reproduce Amazon Bedrock's documented wire format for
// Claude (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
// and https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html):
//   - POST /model/{modelId}/invoke-with-response-stream, SigV4-signed for
//     the "bedrock" service, body = the Messages body without model and
//     stream, plus anthropic_version "bedrock-2023-05-31";
//   - the answer is application/vnd.amazon.eventstream: binary frames with
//     headers :message-type event, :event-type chunk, :content-type
//     application/json whose payload is {"bytes": base64(<Anthropic stream
//     event JSON>)}; a failure inside the stream is a frame with
//     :message-type exception and :exception-type e.g. modelStreamErrorException;
//   - errors before the stream are JSON {"message": ...} with the exception
//     name in the x-amzn-ErrorType header (ThrottlingException 429,
//     ValidationException 400, AccessDeniedException 403,
//     ModelTimeoutException 408, ModelStreamErrorException 424,
//     ServiceUnavailableException 503, InternalServerException 500).

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/pkg/llm"
)

const (
	testAWSKeyID   = "AKIAIOSFODNN7EXAMPLE"
	testAWSSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY-SECRET-EXAMPLEKEY"
	testAWSSession = "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN"
	bedrockModel   = "anthropic.claude-3-5-sonnet-20241022-v2:0"
)

// bedrockFake is an httptest server standing in for
// bedrock-runtime.{region}.amazonaws.com. It records the request URI (with
// its escaping) besides what fake records.
type bedrockFake struct {
	*fake
	mu  sync.Mutex
	uri string
}

func newBedrockFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *bedrockFake {
	t.Helper()
	bf := &bedrockFake{}
	bf.fake = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		bf.mu.Lock()
		bf.uri = r.RequestURI
		bf.mu.Unlock()
		respond(w, r)
	})
	return bf
}

func (bf *bedrockFake) requestURI() string {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	return bf.uri
}

func newBedrockClient(t *testing.T, f *bedrockFake, mod ...func(*Options)) *Client {
	t.Helper()
	o := Options{
		// An Anthropic key set by mistake must not travel to AWS.
		APIKey: testKey,
		Bedrock: &BedrockOptions{
			Region:          "us-east-1",
			AccessKeyID:     testAWSKeyID,
			SecretAccessKey: testAWSSecret,
			SessionToken:    testAWSSession,
			BaseURL:         f.srv.URL,
		},
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := New(o)
	require.NoError(t, err)
	return c
}

// frame encodes one event-stream message the way Bedrock sends it.
func frame(t *testing.T, headers map[string]string, payload []byte) []byte {
	t.Helper()
	var msg eventstream.Message
	for k, v := range headers {
		msg.Headers.Set(k, eventstream.StringValue(v))
	}
	msg.Payload = payload
	var buf bytes.Buffer
	require.NoError(t, eventstream.NewEncoder().Encode(&buf, msg))
	return buf.Bytes()
}

// chunkFrame wraps one Anthropic stream event as a Bedrock chunk event.
func chunkFrame(t *testing.T, event string) []byte {
	t.Helper()
	payload := fmt.Sprintf(`{"bytes":%q,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"}`,
		base64.StdEncoding.EncodeToString([]byte(event)))
	return frame(t, map[string]string{
		":message-type": "event",
		":event-type":   "chunk",
		":content-type": "application/json",
	}, []byte(payload))
}

// exceptionFrame is an exception raised inside the stream.
func exceptionFrame(t *testing.T, name, msg string) []byte {
	t.Helper()
	return frame(t, map[string]string{
		":message-type":   "exception",
		":exception-type": name,
		":content-type":   "application/json",
	}, fmt.Appendf(nil, `{"message":%q}`, msg))
}

// eventStream answers 200 with the frames, flushing after each one.
func eventStream(frames ...[]byte) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Header().Set("X-Amzn-Requestid", "f9a3c1e2-0b8d-4a6f-9e21-6c2d7b4e5a10")
		w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, f := range frames {
			_, _ = w.Write(f)
			w.(http.Flusher).Flush()
		}
	}
}

func chunks(t *testing.T, events ...string) [][]byte {
	t.Helper()
	out := make([][]byte, len(events))
	for i, e := range events {
		out[i] = chunkFrame(t, e)
	}
	return out
}

// bedrockErrorReply is an AWS JSON error response.
func bedrockErrorReply(status int, exception, msg string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Requestid", "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6")
		w.Header().Set("X-Amzn-Errortype", exception+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"message":%q}`, msg)
	}
}

// requireNoAWSSecret asserts no credential appears anywhere in err's chain.
func requireNoAWSSecret(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{testAWSSecret, testAWSSession, testKey} {
			require.NotContains(t, e.Error(), s)
			require.NotContains(t, fmt.Sprintf("%+v", e), s)
		}
	}
}

// requireValidSigV4 re-signs the recorded request with the test credentials
// and the request's own X-Amz-Date and signed headers, and requires the same
// Authorization header: the SDK signed with our secret, over this body.
func requireValidSigV4(t *testing.T, f *bedrockFake) {
	t.Helper()
	f.mu.Lock()
	header, body, uri := f.header.Clone(), bytes.Clone(f.fake.body), f.uri
	f.mu.Unlock()
	auth := header.Get("Authorization")
	require.True(t, strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+testAWSKeyID+"/"), auth)
	require.Contains(t, auth, "/us-east-1/bedrock/aws4_request")
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	require.True(t, ok, auth)
	signed, _, _ = strings.Cut(signed, ",")

	req, err := http.NewRequest(http.MethodPost, f.srv.URL+uri, bytes.NewReader(body))
	require.NoError(t, err)
	for _, h := range strings.Split(signed, ";") {
		if h == "host" || h == "content-length" {
			continue // taken from the URL and the body
		}
		req.Header[http.CanonicalHeaderKey(h)] = header.Values(h)
	}
	at, err := time.Parse("20060102T150405Z", header.Get("X-Amz-Date"))
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret, SessionToken: testAWSSession}
	require.NoError(t, v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", at))
	require.Equal(t, req.Header.Get("Authorization"), auth)
}

func TestBedrockStream(t *testing.T) {
	t.Parallel()
	f := newBedrockFake(t, eventStream(chunks(t, evStart, evTextStart, evPing, textDelta(0, "Hello"),
		textDelta(0, ", world"), blockStop(0), msgDelta("end_turn", 15), evStop)...))
	c := newBedrockClient(t, f, func(o *Options) { o.Betas = []string{"token-efficient-tools-2025-02-19"} })

	req := userReq("Hi")
	req.Model = bedrockModel
	req.Messages = append([]llm.Message{{Role: llm.RoleSystem, Content: "You are terse."}}, req.Messages...)
	s, err := c.Stream(t.Context(), req)
	require.NoError(t, err)
	text, got, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, "Hello, world", text)
	last := got[len(got)-1]
	require.Equal(t, llm.FinishStop, last.FinishReason)
	require.Equal(t, &llm.Usage{PromptTokens: 25, CompletionTokens: 15, TotalTokens: 40}, last.Usage)

	// The model id is a path segment, its ':' escaped.
	require.Equal(t, "/model/"+bedrockModel+"/invoke-with-response-stream", f.path)
	require.Equal(t, "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke-with-response-stream", f.requestURI())
	require.Equal(t, testAWSSession, f.header.Get("X-Amz-Security-Token"))
	require.Empty(t, f.header.Get("X-Api-Key"), "the Anthropic key must not be sent to AWS")
	require.Empty(t, f.header.Get("Anthropic-Beta"))
	requireValidSigV4(t, f)

	body := f.request(t)
	require.NotContains(t, body, "model")
	require.NotContains(t, body, "stream")
	require.Equal(t, "bedrock-2023-05-31", body["anthropic_version"])
	require.Equal(t, []any{"token-efficient-tools-2025-02-19"}, body["anthropic_beta"])
	require.Equal(t, float64(DefaultMaxTokens), body["max_tokens"])
	requireJSON(t, `[{"type":"text","text":"You are terse."}]`, body["system"])
	requireJSON(t, `[{"role":"user","content":[{"type":"text","text":"Hi"}]}]`, body["messages"])
}

func TestBedrockInferenceProfile(t *testing.T) {
	t.Parallel()
	const profile = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	f := newBedrockFake(t, eventStream(chunks(t, evStart, evTextStart, textDelta(0, "ok"), msgDelta("max_tokens", 1), evStop)...))
	c := newBedrockClient(t, f)
	req := userReq("hi")
	req.Model = profile
	s, err := c.Stream(t.Context(), req)
	require.NoError(t, err)
	_, got, err := collect(t, s)
	require.NoError(t, err)
	require.Equal(t, llm.FinishLength, got[len(got)-1].FinishReason)
	require.Equal(t, "/model/"+profile+"/invoke-with-response-stream", f.path)
	// The family behind a profile id is known, so max_tokens fits it.
	require.True(t, c.Capabilities(profile).Tools)
	require.Equal(t, 8192, c.Capabilities(bedrockModel).MaxOutput)
}

func TestBedrockHTTPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		exception string
		msg       string
		kind      llm.Kind
	}{
		{"throttled", 429, "ThrottlingException", "Too many requests, please wait before trying again.", llm.KindRateLimited},
		{"quota", 400, "ServiceQuotaExceededException", "Your request exceeds the service quota for your account.", llm.KindRateLimited},
		{"input too long", 400, "ValidationException", "Input is too long for requested model.", llm.KindContextWindow},
		{"prompt too long", 400, "ValidationException", "prompt is too long: 215000 tokens > 200000 maximum", llm.KindContextWindow},
		{"validation", 400, "ValidationException", "messages: field required", llm.KindBadRequest},
		{"access denied", 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.", llm.KindAuth},
		{"bad signature", 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.", llm.KindAuth},
		{"unrecognized client", 403, "UnrecognizedClientException", "The security token included in the request is invalid.", llm.KindAuth},
		{"not found", 404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.", llm.KindBadRequest},
		{"model timeout", 408, "ModelTimeoutException", "Model has timed out in processing the request.", llm.KindTimeout},
		{"model stream error", 424, "ModelStreamErrorException", "The model stream failed.", llm.KindUnavailable},
		{"internal", 500, "InternalServerException", "An internal server error occurred.", llm.KindUnavailable},
		{"unavailable", 503, "ServiceUnavailableException", "Bedrock is unable to process your request.", llm.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A server echoing a credential back must not get it into an error.
			f := newBedrockFake(t, bedrockErrorReply(tt.status, tt.exception, tt.msg+" (secret "+testAWSSecret+", token "+testAWSSession+")"))
			req := userReq("hi")
			req.Model = bedrockModel
			s, err := newBedrockClient(t, f).Stream(t.Context(), req)
			require.Nil(t, s)
			le, ok := errors.AsType[*llm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.kind, le.Kind, le.Error())
			require.Equal(t, tt.status, le.Status)
			require.Equal(t, tt.exception, le.Code)
			require.Contains(t, le.Message, tt.msg)
			require.False(t, le.MidStream)
			requireNoAWSSecret(t, err)
			requireValidSigV4(t, f)
		})
	}
}

func TestBedrockTypeInBody(t *testing.T) {
	t.Parallel()
	// Some AWS front ends name the exception in the body's __type only.
	f := newBedrockFake(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprint(w, `{"__type":"com.amazon.coral.service#ExpiredTokenException","Message":"The security token included in the request is expired"}`)
	})
	_, err := newBedrockClient(t, f).Stream(t.Context(), userReq("hi"))
	le, ok := errors.AsType[*llm.Error](err)
	require.True(t, ok, "%T %v", err, err)
	require.Equal(t, llm.KindAuth, le.Kind)
	require.Equal(t, "ExpiredTokenException", le.Code)
	require.Equal(t, "The security token included in the request is expired", le.Message)
}

func TestBedrockStreamExceptions(t *testing.T) {
	t.Parallel()
	t.Run("mid-stream", func(t *testing.T) {
		t.Parallel()
		frames := append(chunks(t, evStart, evTextStart, textDelta(0, "Partial")),
			exceptionFrame(t, "modelStreamErrorException", "Model stream failed for secret "+testAWSSecret))
		f := newBedrockFake(t, eventStream(frames...))
		s, err := newBedrockClient(t, f).Stream(t.Context(), userReq("hi"))
		require.NoError(t, err)
		text, _, err := collect(t, s)
		require.Equal(t, "Partial", text)
		le, ok := errors.AsType[*llm.Error](err)
		require.True(t, ok, "%T %v", err, err)
		require.Equal(t, llm.KindUnavailable, le.Kind, le.Error())
		require.True(t, le.MidStream)
		require.Equal(t, "modelStreamErrorException", le.Code)
		requireNoAWSSecret(t, err)
	})
	t.Run("throttled before output", func(t *testing.T) {
		t.Parallel()
		frames := append(chunks(t, evStart), exceptionFrame(t, "throttlingException", "Too many tokens, please wait before trying again."))
		f := newBedrockFake(t, eventStream(frames...))
		s, err := newBedrockClient(t, f).Stream(t.Context(), userReq("hi"))
		require.Nil(t, s)
		require.ErrorIs(t, err, llm.ErrRateLimited)
		require.False(t, llm.IsMidStream(err))
	})
	t.Run("model timeout before output", func(t *testing.T) {
		t.Parallel()
		f := newBedrockFake(t, eventStream(exceptionFrame(t, "modelTimeoutException", "Model has timed out.")))
		_, err := newBedrockClient(t, f).Stream(t.Context(), userReq("hi"))
		require.ErrorIs(t, err, llm.ErrTimeout)
	})
}

// roundTripFunc lets a test see the outgoing request without any network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBedrockOptions(t *testing.T) {
	t.Parallel()
	full := func() *BedrockOptions {
		return &BedrockOptions{Region: "eu-west-3", AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret}
	}
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"no region", Options{Bedrock: &BedrockOptions{AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret}}, llm.ErrBadRequest},
		{"no secret", Options{Bedrock: &BedrockOptions{Region: "us-east-1", AccessKeyID: testAWSKeyID}}, llm.ErrAuth},
		{"no key id", Options{Bedrock: &BedrockOptions{Region: "us-east-1", SecretAccessKey: testAWSSecret}}, llm.ErrAuth},
		{"with vertex", Options{Bedrock: full(), Vertex: &VertexOptions{Project: "p", Region: "us-east5"}}, llm.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.opts)
			require.ErrorIs(t, err, tt.want)
			requireNoAWSSecret(t, err)
		})
	}

	t.Run("default endpoint", func(t *testing.T) {
		t.Parallel()
		// Without BaseURL the SDK picks the regional bedrock-runtime host; the
		// transport fails the call, so nothing leaves the machine.
		var host string
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			host = r.URL.Host
			return nil, errors.New("no network in tests")
		})}
		c, err := New(Options{Bedrock: full(), HTTPClient: hc})
		require.NoError(t, err)
		_, err = c.Stream(t.Context(), userReq("hi"))
		require.Error(t, err)
		require.Equal(t, "bedrock-runtime.eu-west-3.amazonaws.com", host)
		requireNoAWSSecret(t, err)
	})
}
