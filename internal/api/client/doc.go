// Package client is the Go client of Rewind's control plane API, one method per route. It
// sends the bearer token it is given and turns every error response back into an
// *errs.Error with the same Kind, message and hint. It must not decide anything the server
// decides: it neither validates names nor resolves "latest".
package client
