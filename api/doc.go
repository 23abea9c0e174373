// Package api holds Rewind's OpenAPI document, openapi.yaml, embedded so the server can
// serve the same bytes the repository keeps. It holds no code that serves or calls the
// API: that lives in internal/api.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the control plane's HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
