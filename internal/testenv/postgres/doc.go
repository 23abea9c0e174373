// Package postgres starts a real PostgreSQL server for tests: initdb into a fresh temporary
// directory, the server on a free loopback port with its unix socket in that directory,
// password authentication for the superuser over TCP, and a fast shutdown when the test
// ends. PostgreSQL refuses to run as root, so when the tests run as root the directory is
// given to the "postgres" user and the server runs as that user. Options add configuration
// (WAL archiving, replication) and a replication role, for the point-in-time recovery
// plugin's tests; StartDataDir starts a server on a restored data directory, and
// StartStandby, WaitReplayed and Promote make a streaming standby and fail over to it. It
// never skips: missing binaries fail the test with how to install them.
//
// The binaries are found in $REWIND_PG_BIN, else in the newest /usr/lib/postgresql/<n>/bin
// (Debian's package postgresql: apt-get install -y postgresql).
package postgres
