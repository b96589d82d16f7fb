package config

// What each LiteLLM key becomes. docs/litellm.md has the same table for
// readers; the tests hold the two together.

// keyRule says how a LiteLLM key is treated.
type keyRule struct {
	how keyHow
	why string // for noted and refused keys: the reason shown
}

type keyHow int

const (
	mapped    keyHow = iota // translated into the model
	noted                   // accepted; no meaning here (start-up notice)
	refusedOn               // refused unless false or empty (a no-op)
	refused                 // refused
)

const (
	whyRedis     = "LiteLLM's Redis holds its shared router state; Switchyard shares cooldowns and rpm/tpm counters through NATS KV"
	whyLogs      = "Switchyard's logs: LOG_LEVEL and LOG_FORMAT"
	whyCallbacks = "callbacks to hosted logging services are not run; Switchyard exports Prometheus metrics (/metrics) and OpenTelemetry traces (OTEL_ variables)"
	whyProxy     = "a setting of LiteLLM's proxy server (database, UI, spend logs, alerting, health checks); no meaning here"
	whyAuth      = "Switchyard's gateway authenticates with its own API keys and NATS permissions; this access rule cannot be honoured"
	whyPolicy    = "a routing feature Switchyard does not have"
	whyChatOnly  = "Switchyard serves chat completions only"
	whyPreCall   = "Switchyard always checks the context window before the call, when the model's is known"
	whyScheduler = "for LiteLLM's scheduler_acompletion() only; Switchyard's queue orders jobs itself"
	whyNoCache   = "LiteLLM's cache is not translated: set a group's cache (cache: {ttl: 1h}) in a Switchyard model file"
)

// routerKeys are router settings, under router_settings or (most of them)
// litellm_settings; router_settings wins where both set one.
var routerKeys = map[string]keyRule{
	"routing_strategy":                {how: mapped},
	"routing_strategy_args":           {how: refusedOn, why: "Switchyard's latency and usage estimates have no window or buffer to tune (lowest_latency is an average of the time to first token)"},
	"num_retries":                     {how: mapped},
	"retry_after":                     {how: mapped},
	"timeout":                         {how: mapped},
	"stream_timeout":                  {how: mapped},
	"request_timeout":                 {how: mapped},
	"allowed_fails":                   {how: mapped},
	"cooldown_time":                   {how: mapped},
	"disable_cooldowns":               {how: mapped},
	"allowed_fails_policy":            {how: mapped},
	"retry_policy":                    {how: mapped},
	"model_group_retry_policy":        {how: mapped},
	"fallbacks":                       {how: mapped},
	"context_window_fallbacks":        {how: mapped},
	"content_policy_fallbacks":        {how: mapped},
	"default_fallbacks":               {how: mapped},
	"max_fallbacks":                   {how: mapped},
	"model_group_alias":               {how: mapped},
	"enable_pre_call_checks":          {how: noted, why: whyPreCall},
	"enable_pre_call_check":           {how: noted, why: whyPreCall},
	"default_max_parallel_requests":   {how: mapped},
	"max_parallel_requests":           {how: mapped},
	"default_litellm_params":          {how: mapped},
	"redis_host":                      {how: noted, why: whyRedis},
	"redis_port":                      {how: noted, why: whyRedis},
	"redis_password":                  {how: noted, why: whyRedis},
	"redis_url":                       {how: noted, why: whyRedis},
	"redis_db":                        {how: noted, why: whyRedis},
	"cache_kwargs":                    {how: noted, why: whyRedis},
	"client_ttl":                      {how: noted, why: "provider clients are built once per deployment and kept"},
	"debug_level":                     {how: noted, why: whyLogs},
	"set_verbose":                     {how: noted, why: whyLogs},
	"polling_interval":                {how: noted, why: whyScheduler},
	"default_priority":                {how: noted, why: whyScheduler},
	"ignore_invalid_deployments":      {how: noted, why: "an invalid deployment stops the worker at start, named with its line, instead of being skipped"},
	"deployment_affinity_ttl_seconds": {how: noted, why: "only used with optional_pre_call_checks, which Switchyard does not have"},
	"enable_tag_filtering":            {how: refusedOn, why: "tag-based routing: " + whyPolicy},
	"tag_filtering_match_any":         {how: noted, why: "only used with enable_tag_filtering"},
	"provider_budget_config":          {how: refusedOn, why: "per-provider budgets: " + whyPolicy + "; tenants have token and cost budgets (tenants: in the model file)"},
	"optional_pre_call_checks":        {how: refusedOn, why: "affinity, prompt-caching and budget pre-call checks: " + whyPolicy},
	"cache_responses":                 {how: refusedOn, why: whyNoCache},
	"caching_groups":                  {how: noted, why: whyNoCache},
	"alerting_config":                 {how: refusedOn, why: "Slack alerting is not sent; alert on Switchyard's Prometheus metrics"},
	"router_general_settings":         {how: noted, why: "SDK optimisations of LiteLLM's Router"},
	"assistants_config":               {how: refusedOn, why: whyChatOnly},
	"search_tools":                    {how: refusedOn, why: whyChatOnly},
	"guardrail_list":                  {how: refusedOn, why: "guardrails are not applied"},
	"routing_groups":                  {how: refusedOn, why: "routing groups of model groups: " + whyPolicy},
}

// litellmOnlyKeys are litellm_settings keys that are not router settings.
var litellmOnlyKeys = map[string]keyRule{
	"success_callback":               {how: noted, why: whyCallbacks},
	"failure_callback":               {how: noted, why: whyCallbacks},
	"callbacks":                      {how: noted, why: whyCallbacks},
	"service_callbacks":              {how: noted, why: whyCallbacks},
	"langfuse_default_tags":          {how: noted, why: whyCallbacks},
	"turn_off_message_logging":       {how: noted, why: "Switchyard never logs prompts or answers"},
	"redact_user_api_key_info":       {how: noted, why: "Switchyard never logs keys"},
	"json_logs":                      {how: noted, why: whyLogs},
	"drop_params":                    {how: noted, why: "Switchyard sends each vendor only the request fields it maps for that vendor"},
	"modify_params":                  {how: noted, why: "requests are translated per vendor by the provider packages"},
	"force_ipv4":                     {how: noted, why: "the network stack picks the address family"},
	"telemetry":                      {how: noted, why: "Switchyard sends no telemetry"},
	"enable_preview_features":        {how: noted, why: "no preview features"},
	"disable_end_user_cost_tracking": {how: noted, why: whyProxy},
	"disable_end_user_cost_tracking_prometheus_only":  {how: noted, why: whyProxy},
	"key_generation_settings":                         {how: noted, why: whyProxy},
	"disable_add_transform_inline_image_block":        {how: noted, why: "Fireworks image URLs are sent as given"},
	"disable_hf_tokenizer_download":                   {how: noted, why: "Switchyard estimates tokens without a tokenizer download"},
	"enable_json_schema_validation":                   {how: noted, why: "Switchyard always validates json_schema answers"},
	"mcp_aliases":                                     {how: noted, why: whyChatOnly},
	"use_chat_completions_url_for_anthropic_messages": {how: noted, why: "the gateway translates /v1/messages itself"},
	"disable_copilot_system_to_assistant":             {how: noted, why: "deprecated in LiteLLM"},
	"enable_key_alias_format_validation":              {how: noted, why: whyProxy},
	"return_response_headers":                         {how: noted, why: "vendor response headers are not passed on"},
	"cache":                                           {how: refusedOn, why: whyNoCache},
	"cache_params":                                    {how: refusedOn, why: whyNoCache},
	"max_budget":                                      {how: refusedOn, why: "use a tenant budget (tenants: in the model file)"},
	"budget_duration":                                 {how: refusedOn, why: "use a tenant budget (tenants: in the model file)"},
	"default_team_settings":                           {how: refusedOn, why: whyAuth},
	"upperbound_key_generate_params":                  {how: noted, why: whyProxy},
	"max_internal_user_budget":                        {how: refusedOn, why: "use a tenant budget (tenants: in the model file)"},
}

// generalKeys are general_settings: the proxy server's.
var generalKeys = map[string]keyRule{
	"master_key":                                        {how: mapped},
	"max_parallel_requests":                             {how: mapped},
	"database_url":                                      {how: noted, why: whyProxy},
	"database_connection_pool_limit":                    {how: noted, why: whyProxy},
	"database_connection_timeout":                       {how: noted, why: whyProxy},
	"allow_requests_on_db_unavailable":                  {how: noted, why: whyProxy},
	"store_model_in_db":                                 {how: noted, why: whyProxy},
	"supported_db_objects":                              {how: noted, why: whyProxy},
	"disable_spend_logs":                                {how: noted, why: whyProxy},
	"disable_spend_updates":                             {how: noted, why: whyProxy},
	"disable_master_key_return":                         {how: noted, why: whyProxy},
	"disable_reset_budget":                              {how: noted, why: whyProxy},
	"disable_adding_master_key_hash_to_db":              {how: noted, why: whyProxy},
	"disable_retry_on_max_parallel_request_limit_error": {how: noted, why: "a deployment at its concurrency limit is waited for, not retried"},
	"maximum_spend_logs_retention_period":               {how: noted, why: whyProxy},
	"maximum_spend_logs_retention_interval":             {how: noted, why: whyProxy},
	"store_prompts_in_spend_logs":                       {how: noted, why: whyProxy},
	"proxy_budget_rescheduler_min_time":                 {how: noted, why: whyProxy},
	"proxy_budget_rescheduler_max_time":                 {how: noted, why: whyProxy},
	"proxy_batch_write_at":                              {how: noted, why: whyProxy},
	"proxy_batch_polling_interval":                      {how: noted, why: whyProxy},
	"spend_report_frequency":                            {how: noted, why: whyProxy},
	"alerting":                                          {how: noted, why: whyProxy},
	"alerting_threshold":                                {how: noted, why: whyProxy},
	"alert_types":                                       {how: noted, why: whyProxy},
	"alerting_args":                                     {how: noted, why: whyProxy},
	"alert_to_webhook_url":                              {how: noted, why: whyProxy},
	"background_health_checks":                          {how: noted, why: whyProxy + " (worker --check probes every deployment)"},
	"health_check_interval":                             {how: noted, why: whyProxy},
	"health_check_details":                              {how: noted, why: whyProxy},
	"ui_access_mode":                                    {how: noted, why: whyProxy},
	"litellm_license":                                   {how: noted, why: whyProxy},
	"disable_prisma_schema_update":                      {how: noted, why: whyProxy},
	"user_api_key_cache_ttl":                            {how: noted, why: whyProxy},
	"user_mcp_management_mode":                          {how: noted, why: whyProxy},
	"disable_responses_id_security":                     {how: noted, why: whyChatOnly},
	"infer_model_from_keys":                             {how: noted, why: whyProxy},
	"custom_sso":                                        {how: noted, why: whyProxy},
	"default_team_disabled":                             {how: noted, why: whyProxy},
	"allow_user_auth":                                   {how: noted, why: whyProxy},
	"use_x_forwarded_for":                               {how: noted, why: whyProxy},
	"custom_auth":                                       {how: refusedOn, why: whyAuth},
	"enable_jwt_auth":                                   {how: refusedOn, why: whyAuth},
	"litellm_jwtauth":                                   {how: refusedOn, why: whyAuth},
	"allowed_routes":                                    {how: refusedOn, why: whyAuth},
	"public_routes":                                     {how: refusedOn, why: whyAuth},
	"admin_only_routes":                                 {how: refusedOn, why: whyAuth},
	"allowed_ips":                                       {how: refusedOn, why: whyAuth},
	"enforce_user_param":                                {how: refusedOn, why: whyAuth},
	"enforced_params":                                   {how: refusedOn, why: whyAuth},
	"reject_clientside_metadata_tags":                   {how: refusedOn, why: whyAuth},
	"enable_oauth2_auth":                                {how: refusedOn, why: whyAuth},
	"enable_oauth2_proxy_auth":                          {how: refusedOn, why: whyAuth},
	"oauth2_config_mappings":                            {how: refusedOn, why: whyAuth},
	"service_account_settings":                          {how: refusedOn, why: whyAuth},
	"custom_key_generate":                               {how: refusedOn, why: whyAuth},
	"litellm_key_header_name":                           {how: refusedOn, why: whyAuth},
	"allow_client_side_credentials":                     {how: refusedOn, why: whyAuth},
	"use_client_credentials_pass_through_routes":        {how: refusedOn, why: whyAuth},
	"key_management_system":                             {how: refusedOn, why: "secrets come from the environment (${VAR} or os.environ/VAR), not a secret manager"},
	"key_management_settings":                           {how: refusedOn, why: "secrets come from the environment (${VAR} or os.environ/VAR), not a secret manager"},
	"use_azure_key_vault":                               {how: refusedOn, why: "secrets come from the environment (${VAR} or os.environ/VAR), not a secret manager"},
	"use_google_kms":                                    {how: refusedOn, why: "secrets come from the environment (${VAR} or os.environ/VAR), not a secret manager"},
	"max_request_size_mb":                               {how: refusedOn, why: "request size limits are the gateway's and NATS's (max payload); set them there"},
	"max_response_size_mb":                              {how: refusedOn, why: "answers are not cut by size"},
	"global_max_parallel_requests":                      {how: refusedOn, why: "there is no proxy-wide limit; SWITCHYARD_CONCURRENCY bounds each worker's jobs per group, and max_parallel_requests each deployment"},
	"pass_through_endpoints":                            {how: refusedOn, why: whyChatOnly},
	"forward_client_headers_to_llm_api":                 {how: refusedOn, why: "client headers are not forwarded to vendors"},
	"forward_openai_org_id":                             {how: refusedOn, why: "client headers are not forwarded to vendors"},
	"completion_model":                                  {how: refusedOn, why: "a request must name its model"},
	"image_generation_model":                            {how: refusedOn, why: whyChatOnly},
	"embedding_model":                                   {how: refusedOn, why: whyChatOnly},
	"moderation_model":                                  {how: refusedOn, why: whyChatOnly},
}

// topKeys are the other top-level sections LiteLLM knows.
var topKeys = map[string]keyRule{
	"model_list":             {how: mapped},
	"router_settings":        {how: mapped},
	"litellm_settings":       {how: mapped},
	"general_settings":       {how: mapped},
	"environment_variables":  {how: mapped},
	"credential_list":        {how: mapped},
	"callback_settings":      {how: noted, why: whyCallbacks},
	"guardrails":             {how: refusedOn, why: "guardrails are not applied"},
	"mcp_servers":            {how: refusedOn, why: whyChatOnly},
	"assistant_settings":     {how: refusedOn, why: whyChatOnly},
	"files_settings":         {how: refusedOn, why: whyChatOnly + " (batches go through the gateway's /v1/files and /v1/batches)"},
	"finetune_settings":      {how: refusedOn, why: whyChatOnly},
	"vector_store_registry":  {how: refusedOn, why: whyChatOnly},
	"prompts":                {how: refusedOn, why: "prompt management is not provided"},
	"pass_through_endpoints": {how: refusedOn, why: whyChatOnly},
	"search_tools":           {how: refusedOn, why: whyChatOnly},
	"include":                {how: refusedOn, why: "config includes are not read: put everything in one file"},
}

// paramKeys are litellm_params keys; a key not listed is a parameter LiteLLM
// would pass to the vendor, which Switchyard does not send.
var paramKeys = map[string]keyRule{
	"model": {how: mapped}, "api_key": {how: mapped}, "api_base": {how: mapped}, "api_version": {how: mapped},
	"organization": {how: mapped}, "rpm": {how: mapped}, "tpm": {how: mapped}, "timeout": {how: mapped},
	"stream_timeout": {how: mapped}, "num_retries": {how: mapped}, "weight": {how: mapped}, "order": {how: mapped},
	"max_parallel_requests": {how: mapped}, "cooldown_time": {how: mapped}, "temperature": {how: mapped},
	"top_p": {how: mapped}, "max_tokens": {how: mapped}, "max_completion_tokens": {how: mapped}, "stop": {how: mapped},
	"seed": {how: mapped}, "extra_headers": {how: mapped}, "aws_region_name": {how: mapped},
	"aws_access_key_id": {how: mapped}, "aws_secret_access_key": {how: mapped}, "aws_session_token": {how: mapped},
	"vertex_project": {how: mapped}, "vertex_location": {how: mapped}, "custom_llm_provider": {how: mapped},
	"input_cost_per_token": {how: mapped}, "output_cost_per_token": {how: mapped}, "mock_response": {how: mapped},
	"litellm_credential_name": {how: mapped}, "base_model": {how: mapped},
	"max_retries":         {how: noted, why: "LiteLLM's router sets the SDK's own retries to 0 and retries itself (num_retries); so does Switchyard"},
	"region_name":         {how: noted, why: "used by LiteLLM's EU-region pre-call filter, which Switchyard does not have"},
	"drop_params":         {how: noted, why: "Switchyard sends each vendor only the request fields it maps for that vendor"},
	"tags":                {how: noted, why: "only used by tag-based routing"},
	"use_in_pass_through": {how: noted, why: whyChatOnly},
	"vertex_credentials":  {how: refusedOn, why: "Vertex AI credentials come from Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)"},
	"aws_profile_name":    {how: refusedOn, why: "AWS credentials come from aws_access_key_id / aws_secret_access_key or the AWS_ variables"},
	"aws_role_name":       {how: refusedOn, why: "AWS credentials come from aws_access_key_id / aws_secret_access_key or the AWS_ variables"},
	"azure_ad_token":      {how: refusedOn, why: "Azure OpenAI is called with an API key"},
}

// infoKeys are model_info keys Switchyard reads; LiteLLM treats model_info
// as free-form metadata, so others are noted.
var infoKeys = map[string]bool{
	"id": true, "mode": true, "max_tokens": true, "max_input_tokens": true, "max_output_tokens": true,
	"input_cost_per_token": true, "output_cost_per_token": true, "supports_vision": true,
	"supports_function_calling": true, "supports_response_schema": true, "base_model": true,
	"priority": true, "order": true,
}

// ruleFor returns the rule of key in table, or a refusal for a key no table
// knows.
func ruleFor(table map[string]keyRule, section, key string) keyRule {
	if r, ok := table[key]; ok {
		return r
	}
	return keyRule{how: refused, why: "not a " + section + " key Switchyard knows (a typo, or a setting it cannot honour)"}
}

// apply handles the noted and refused keys of a mapping; it reports whether
// key is for the caller to map.
func (t *litellm) apply(n lnode, r keyRule) bool {
	switch r.how {
	case noted:
		t.notice(n, r.why)
	case refusedOn:
		if truthy(n.v) {
			t.fail(n, "cannot be honoured: %s", r.why)
		}
	case refused:
		t.fail(n, "%s", r.why)
	default:
		return true
	}
	return false
}
