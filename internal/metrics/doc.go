// Package metrics exports Rewind's Prometheus metrics, computed from the catalog at scrape
// time by a Collector: jobs by kind and state, bytes moved, job durations, the last
// recovery point of each resource and the current RPO exposure per resource and site. It
// reads the catalog only; it must not change it nor keep state between scrapes.
package metrics
