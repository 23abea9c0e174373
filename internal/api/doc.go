// Package api is the control plane's HTTP interface: JSON routes under /v1 over the catalog
// and the configuration, bearer-token authentication with viewer, operator and admin roles,
// the OpenAPI document that describes every route, and the Prometheus /metrics endpoint.
// It maps errs.Kind to an HTTP status in exactly one place (status.go). It validates every
// request strictly and hands job starts and cancels to a Jobs implementation; it must not
// run jobs itself, read vaults, or parse configuration files.
package api
