// Package apitest runs a real API server for tests: an SQLite catalog in a temporary
// directory synced from a small configuration, a fixed clock, a fake Jobs that records
// jobs in the catalog as the queue would, and an httptest.Server. It is for tests only and
// must not be imported by production code.
package apitest
