// Package config reads the configuration file of "rewind server" (rewind.yaml): sites,
// vaults, resources, plans, API tokens and server settings. It parses and validates the
// file once, reports every problem with file, line, column and field path, and hands
// out plain Go values (durations as time.Duration, schedules as plan.Schedule, retention
// as plan.Retention) so that no other package ever sees YAML. It must not read secret
// files (it may only check that they exist and are private), open vaults, reach
// databases, or apply defaults that belong to the components it configures.
package config
