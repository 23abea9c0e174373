// Package backendtest is the conformance suite for backend.Backend: every implementation
// (mem, local, s3) and every decorator (retry, faulty) runs it from its own tests. It
// checks behaviour through the public contract only and must not depend on any particular
// implementation.
package backendtest
