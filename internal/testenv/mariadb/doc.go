// Package mariadb starts a real MariaDB server for tests: mariadb-install-db into a fresh
// temporary directory, mariadbd on a free loopback port with its unix socket in that
// directory, a database and a password-protected user for TCP connections, and a shutdown
// when the test ends. When the tests run as root the directory is given to the "mysql"
// user and the server runs as that user. It never skips: missing binaries fail the test
// with how to install them. It must not touch a system-wide MariaDB or anything outside
// its temporary directory. Only tests import it.
//
// The binaries are found in $REWIND_MARIADB_BIN, else on $PATH and in /usr/sbin (Debian's
// package mariadb-server: apt-get install -y mariadb-server).
package mariadb
