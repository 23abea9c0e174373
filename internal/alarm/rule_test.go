package alarm_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rewind-dr/rewind/internal/alarm"
	"github.com/rewind-dr/rewind/internal/errs"
)

func TestParseRule(t *testing.T) {
	states := map[string]alarm.State{
		"a": alarm.StateAlarm, "b": alarm.StateOK, "c": alarm.StateInsufficient,
		"d": alarm.StateAlarm, "arn:aws:x/y": alarm.StateOK,
	}
	get := func(n string) alarm.State { return states[n] }
	tests := []struct {
		rule   string
		want   bool
		alarms []string
	}{
		{"ALARM(a)", true, []string{"a"}},
		{"OK(a)", false, []string{"a"}},
		{"INSUFFICIENT_DATA(c)", true, []string{"c"}},
		{"TRUE", true, nil},
		{"FALSE OR TRUE", true, nil},
		{"ALARM(a) AND NOT ALARM(b)", true, []string{"a", "b"}},
		{"NOT ALARM(a) OR ALARM(b) AND TRUE", false, []string{"a", "b"}}, // AND binds tighter
		{"(ALARM(a) OR ALARM(b)) AND OK(b)", true, []string{"a", "b"}},
		{"NOT NOT ALARM(a)", true, []string{"a"}},
		{`ALARM("a") AND OK("arn:aws:x/y")`, true, []string{"a", "arn:aws:x/y"}},
		{"AT_LEAST(2, ALARM, (a, b, d))", true, []string{"a", "b", "d"}},
		{"AT_LEAST(3, ALARM, (a, b, d))", false, []string{"a", "b", "d"}},
		{"AT_LEAST(50%, OK, (a, b))", true, []string{"a", "b"}},
		{"AT_LEAST(51%, OK, (a, b))", false, []string{"a", "b"}},
		{"AT_LEAST(2, NOT ALARM, (a, b, c))", true, []string{"a", "b", "c"}},
		{"AT_LEAST(0%, ALARM, (b))", true, []string{"b"}},
		{"ALARM(a) AND ALARM(a)", true, []string{"a"}},
	}
	for _, tt := range tests {
		r, err := alarm.ParseRule(tt.rule)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.rule, err)
			continue
		}
		if got := r.Eval(get); got != tt.want {
			t.Errorf("%q = %v, want %v", tt.rule, got, tt.want)
		}
		if got := r.Alarms(); !reflect.DeepEqual(got, tt.alarms) {
			t.Errorf("%q alarms %q, want %q", tt.rule, got, tt.alarms)
		}
		if r.String() != tt.rule {
			t.Errorf("String() = %q", r.String())
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct{ rule, want string }{
		{"", "column 1: expected ALARM(…), OK(…), INSUFFICIENT_DATA(…), AT_LEAST(…), TRUE, FALSE, NOT or '(', found end of rule"},
		{"ALARM(a) AND", "column 13: expected ALARM(…)"},
		{"ALARM(a) OK(b)", "column 10: unexpected 'OK' after a complete rule"},
		{"ALARM a", "column 7: expected '(' after ALARM, found 'a'"},
		{"ALARM()", "column 7: expected an alarm name, found ')'"},
		{"ALARM(a", "column 8: expected ')' after the alarm name, found end of rule"},
		{"(ALARM(a)", "column 10: expected ')' closing the '(' at column 1"},
		{"alarm(a)", "column 1: keywords are upper case: write ALARM, not alarm"},
		{"ALARM(a) and OK(b)", "column 10: unexpected 'and'"},
		{"CPU(a)", "column 1: expected ALARM(…)"},
		{`ALARM("a)`, "column 7: unterminated quoted name"},
		{`ALARM("")`, "column 7: empty alarm name"},
		{"ALARM(a) & OK(b)", "column 10: unexpected character '&'"},
		{"AT_LEAST(x, ALARM, (a))", "column 10: AT_LEAST needs a count or a percentage first"},
		{"AT_LEAST(2, BROKEN, (a, b))", "column 13: AT_LEAST needs a state"},
		{"AT_LEAST(3, ALARM, (a, b))", "column 10: AT_LEAST 3 of 2 alarms can never be true"},
		{"AT_LEAST(150%, OK, (a))", "column 10: AT_LEAST percentage 150% is over 100%"},
		{"AT_LEAST(1, OK, a)", "column 17: expected '(' opening the AT_LEAST list"},
		{"AT_LEAST(1, OK, (a, ))", "column 21: expected an alarm name"},
		{"AT_LEAST(1, OK, (a)", "column 20: expected ')' closing AT_LEAST"},
		{strings.Repeat("TRUE OR ", 1300) + "TRUE", "the limit is 10240"},
	}
	for _, tt := range tests {
		_, err := alarm.ParseRule(tt.rule)
		if err == nil {
			t.Errorf("ParseRule(%.40q) = nil error, want %q", tt.rule, tt.want)
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("ParseRule(%.40q): kind %v, want invalid", tt.rule, errs.KindOf(err))
		}
		var re *alarm.RuleError
		if !errors.As(err, &re) || !strings.Contains(re.Error(), tt.want) {
			t.Errorf("ParseRule(%.40q) = %v, want %q", tt.rule, err, tt.want)
		}
	}
	var many []string
	for i := range alarm.MaxRuleAlarms + 1 {
		many = append(many, "ALARM(a"+strings.Repeat("x", i)+")")
	}
	if _, err := alarm.ParseRule(strings.Join(many, " OR ")); err == nil || !strings.Contains(err.Error(), "101 alarms") {
		t.Errorf("a rule over 101 alarms: %v, want refused", err)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"ALARM(a) AND NOT ALARM(b)", "AT_LEAST(2, NOT OK, (a, \"b c\", d))", "(TRUE OR FALSE)",
		"AT_LEAST(50%, INSUFFICIENT_DATA, (x))", `ALARM("a\"b")`, "NOT (ALARM(a) OR OK(b)) AND TRUE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := alarm.ParseRule(s)
		if err != nil {
			var re *alarm.RuleError
			if !errors.As(err, &re) || re.Column < 1 || re.Column > len(s)+1 && len(s) <= alarm.MaxRuleLength {
				t.Fatalf("ParseRule(%q): error %v has no valid column", s, err)
			}
			return
		}
		names := r.Alarms()
		for _, n := range names {
			if n == "" {
				t.Fatalf("ParseRule(%q): empty alarm name", s)
			}
		}
		for _, st := range []alarm.State{alarm.StateOK, alarm.StateAlarm, alarm.StateInsufficient} {
			r.Eval(func(string) alarm.State { return st })
		}
		// A valid rule parses again to the same alarms.
		r2, err := alarm.ParseRule(r.String())
		if err != nil || !reflect.DeepEqual(r2.Alarms(), names) {
			t.Fatalf("reparse of %q: %v %q", s, err, r2.Alarms())
		}
	})
}
