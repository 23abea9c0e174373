package runbook

import "fmt"

// Predefined error names of the Amazon States Language.
const (
	ErrAll                    = "States.ALL"
	ErrHeartbeatTimeout       = "States.HeartbeatTimeout"
	ErrTimeout                = "States.Timeout"
	ErrTaskFailed             = "States.TaskFailed"
	ErrPermissions            = "States.Permissions"
	ErrResultPathMatchFailure = "States.ResultPathMatchFailure"
	ErrParameterPathFailure   = "States.ParameterPathFailure"
	ErrBranchFailed           = "States.BranchFailed"
	ErrNoChoiceMatched        = "States.NoChoiceMatched"
	ErrIntrinsicFailure       = "States.IntrinsicFailure"
	ErrExceedToleratedFailure = "States.ExceedToleratedFailureThreshold"
	ErrItemReaderFailed       = "States.ItemReaderFailed"
	ErrRuntime                = "States.Runtime"
	ErrDataLimitExceeded      = "States.DataLimitExceeded"
	ErrResultWriterFailed     = "States.ResultWriterFailed"
	ErrQueryEvaluationError   = "States.QueryEvaluationError"
)

var predefinedErrors = map[string]bool{
	ErrAll: true, ErrHeartbeatTimeout: true, ErrTimeout: true, ErrTaskFailed: true, ErrPermissions: true,
	ErrResultPathMatchFailure: true, ErrParameterPathFailure: true, ErrBranchFailed: true,
	ErrNoChoiceMatched: true, ErrIntrinsicFailure: true, ErrExceedToleratedFailure: true,
	ErrItemReaderFailed: true, ErrRuntime: true, ErrDataLimitExceeded: true, ErrResultWriterFailed: true,
	ErrQueryEvaluationError: true,
}

// TaskError is returned by a Task to fail with a named error that Retry and Catch can
// match (Name is the ASL error name, such as "Exec.NonZeroExit"). Any other error a Task
// returns is reported as States.TaskFailed with the error text as the cause. The field is
// called Name rather than Error so that *TaskError is itself an error.
type TaskError struct {
	Name  string
	Cause string
}

func (e *TaskError) Error() string {
	if e.Cause == "" {
		return e.Name
	}
	return e.Name + ": " + e.Cause
}

// failure is a state's failure while running: an error name and a cause.
type failure struct {
	name, cause string
	fromBranch  bool // raised by a Parallel branch, so States.BranchFailed matches it too
}

func (f *failure) Error() string { return f.name + ": " + f.cause }

func fail(name, format string, a ...any) *failure {
	return &failure{name: name, cause: fmt.Sprintf(format, a...)}
}

// matchError reports whether a Retry or Catch ErrorEquals list matches f.
func matchError(list []string, f *failure) bool {
	for _, e := range list {
		switch {
		case e == f.name:
			return true
		case f.name == ErrRuntime || f.name == ErrDataLimitExceeded:
			// Not retriable or catchable by the wildcards.
		case e == ErrAll:
			return true
		case e == ErrTaskFailed && f.name != ErrTimeout && f.name != ErrHeartbeatTimeout:
			return true
		case e == ErrBranchFailed && f.fromBranch:
			return true
		}
	}
	return false
}
