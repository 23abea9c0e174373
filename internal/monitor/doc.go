// Package monitor probes the health of the services Rewind protects: HTTP(S) endpoints,
// TCP ports, DNS names, commands, PostgreSQL, MySQL/MariaDB and Redis servers. A Monitor
// turns one Spec into a Probe that always returns a Sample (healthy or not, with the
// latency and the reason for a failure) within the spec's timeout, and a Scheduler runs a
// set of monitors on their intervals and hands every sample to a callback. It must not
// decide what a failure means: state, thresholds and alarms belong to package alarm, and
// it keeps no history and sends no notifications.
package monitor
