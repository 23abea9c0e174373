// Package redis is Rewind's resource plugin for Redis: it reads a server's RDB snapshot over
// the replication protocol (SYNC/PSYNC, as a replica would, including the diskless form),
// verifies its header and CRC-64 trailer, stores it as a redis-rdb point, and restores it
// atomically into a dump file that a redis-server can load. It never writes to the server it
// backs up (it issues only AUTH, INFO, REPLCONF and PSYNC) and never replaces a target file
// with bytes that failed verification.
package redis
