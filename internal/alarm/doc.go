// Package alarm decides, with Amazon CloudWatch's semantics, whether what Rewind watches is
// in trouble. An Evaluator holds alarms over monitor samples, over series of Rewind's own
// Prometheus registry, over instant queries to a Prometheus server, over metric math, and
// over other alarms (composite rules); each pass turns the datapoints of the last periods
// into OK, ALARM or INSUFFICIENT_DATA and reports every transition as a Change with a
// CloudWatch-style reason. It must not probe services, keep state on disk or deliver
// events: probes belong to package monitor, and the caller publishes each Change as an
// event (source EventSource, detail-type EventDetailType).
//
// Evaluation follows CloudWatch as far as its documentation goes. Periods are aligned to
// the Unix epoch. The evaluation range is EvaluationPeriods+2 periods; when it holds at
// least N real datapoints the newest N decide (ALARM when at least M breach, else OK) and
// the missing-data treatment is not used; otherwise every real datapoint in the range is
// used and the N−k missing ones are filled by the treatment: notBreaching and breaching
// fill them as such; ignore keeps the current state unless the real datapoints decide
// the outcome whatever the missing ones would be; missing gives INSUFFICIENT_DATA when the
// range holds no datapoint, ALARM when M real datapoints breach or when the oldest of a
// run of breaching datapoints followed only by missing ones is at least M periods old
// (CloudWatch's premature-alarm rule: "- - X - -" alarms, "- - - - X" does not), OK when
// M breaching datapoints are out of reach, and keeps the current state otherwise. These
// simplifications are Rewind's: the period in progress counts once it holds a sample (so
// a monitor alarm reacts to a sample without waiting for the period to end); the anomaly
// band is mean ± deviations × standard deviation of the period datapoints of the training
// window before the evaluation range, not a seasonal model; metric math supports the
// expression language of expr-lang/expr over current values, not CloudWatch's functions.
package alarm
