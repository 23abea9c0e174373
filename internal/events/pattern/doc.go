// Package pattern compiles and evaluates event patterns written in Amazon EventBridge's
// pattern language, so that Rewind rules written for EventBridge behave the same here:
// exact values, OR within a field and AND across fields, array intersection, prefix,
// suffix, equals-ignore-case, wildcard, anything-but, numeric ranges, cidr, exists and
// $or, with EventBridge's validation errors. No Go library implements this language, so
// Rewind carries its own: Compile validates a pattern once and precompiles every leaf,
// Pattern.Match tests one event, and Set evaluates many named rules against one decoded
// event, skipping rules cheaply by their source and detail-type. The package is pure
// computation: it never reads files, delivers events or keeps state beyond the compiled
// patterns it is given.
package pattern
