// Package s3server starts a real S3-compatible server (versitygw with its posix backend) for
// tests, on a loopback port with a fresh data directory and random credentials, and stops
// it when the test ends. It never skips: a missing binary fails the test with instructions.
//
// The binary is found at $REWIND_VERSITYGW, then as "versitygw" on $PATH, then at
// /root/.cache/rewind-tools/versitygw. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Object versioning would need the posix option --versioning-dir <dir>; object lock is set
// per bucket at creation. Neither is enabled now.
package s3server
