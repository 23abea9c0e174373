// Package control is the control plane's service layer: it turns requests and schedules
// into catalog jobs. Submit validates a job request against the config, writes the job
// (PENDING, with its state-change event, in one transaction) and hands it to the queue;
// Tick is the scheduler: every due plan rule becomes exactly one job per selected resource,
// even with several servers on one catalog (the job's dedup key is unique), a run missed
// while no server was up starts once if its start window is still open, and pending jobs
// whose window closed are EXPIRED. It runs no job itself (package jobs does) and serves no
// HTTP (package api does).
package control
