package anthropic

import (
	"cmp"
	"errors"

	"github.com/anthropics/anthropic-sdk-go/bedrock"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// BedrockOptions routes a Client to Claude on Amazon Bedrock through the
// SDK's own bedrock package: requests go to
// POST /model/{model-id}/invoke-with-response-stream, SigV4-signed for the
// "bedrock" service, and Bedrock's binary event stream is translated back to
// the Messages SSE stream by the SDK.
//
// Credentials are static and explicit: construction reads no shared config
// or credentials file and never calls IMDS or STS. One exception belongs to
// the SDK: if the AWS_BEARER_TOKEN_BEDROCK environment variable is set when
// New runs, the SDK sends it as a bearer token instead of signing.
//
// The model of a request is a Bedrock model id such as
// "anthropic.claude-3-5-sonnet-20241022-v2:0" or an inference profile such
// as "us.anthropic.claude-sonnet-4-20250514-v1:0".
type BedrockOptions struct {
	// Region is the AWS region of the bedrock-runtime endpoint, e.g.
	// "us-east-1". Required.
	Region string
	// AccessKeyID and SecretAccessKey are the static AWS credentials that
	// sign each request. Both are required.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is the optional STS session token of temporary
	// credentials.
	SessionToken string
	// BaseURL overrides the endpoint (default
	// https://bedrock-runtime.{Region}.amazonaws.com), for tests and VPC
	// endpoints. When empty, Options.BaseURL is used if set.
	BaseURL string
}

// validate names what is missing without echoing any value.
func (b *BedrockOptions) validate() error {
	switch {
	case b.Region == "":
		return errors.New("bedrock: region is required")
	case b.AccessKeyID == "" || b.SecretAccessKey == "":
		return errBedrockCredentials
	}
	return nil
}

var errBedrockCredentials = errors.New("bedrock: access key id and secret access key are required")

// bedrockOptions returns the request options that send calls to Bedrock.
// They must come after every other option: the SDK's middleware signs the
// request, so it has to run closest to the wire, and the base URL override
// has to follow the SDK's regional default.
func bedrockOptions(b *BedrockOptions, baseURL string) []option.RequestOption {
	cfg := aws.Config{
		Region: b.Region,
		// A static provider never refreshes, so no cache is needed and
		// nothing is looked up when a request is signed.
		Credentials: credentials.NewStaticCredentialsProvider(b.AccessKeyID, b.SecretAccessKey, b.SessionToken),
	}
	ro := []option.RequestOption{bedrock.WithConfig(cfg)}
	if u := cmp.Or(b.BaseURL, baseURL); u != "" {
		ro = append(ro, option.WithBaseURL(u))
	}
	return ro
}
