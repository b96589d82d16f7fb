// Package config loads the worker's settings: process settings from the
// environment (caarlos0/env) and model groups from a YAML file whose secrets
// are ${ENV_VAR} references. Unknown keys and bad values are refused with the
// file, line and key named.
package config
