// Package redis starts a real Redis server for tests: redis-server on a free loopback port
// with its working directory, configuration and log in a fresh temporary directory, a
// random password (requirepass), no persistence, and a shutdown when the test ends. It
// never skips: a missing redis-server fails the test with how to install it. It must not
// touch a system-wide Redis or anything outside its temporary directory. Only tests import
// it.
//
// The binary is found in $REWIND_REDIS_SERVER, else on $PATH (Debian's package
// redis-server: apt-get install -y redis-server).
package redis
