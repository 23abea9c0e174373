// Package signaltasks adds the runbook tasks with which a runbook on a Rewind server tells
// and watches the world around it: rewind:event appends an event to the catalog's outbox
// (so event rules route it like every other Rewind event), rewind:notify sends a
// notification through a notification URL (Slack, e-mail, ntfy, a webhook, …), and
// rewind:wait-healthy probes a service with a health monitor until it is healthy or a
// deadline passes. It must not run jobs, deliver events itself (the dispatcher does) or
// keep any state between tasks.
package signaltasks
