package wasmgate

import "testing"

func ptr(v uint64) *uint64 { return &v }

func TestLimitsValidation(t *testing.T) {
	if err := (Limits{Second: ptr(5), Minute: ptr(100)}).Validate("config"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]Limits{
		"config.minute: the limit for minute (60) cannot be lower than the limit for second (100)": {Second: ptr(100), Minute: ptr(60)},
		"config: set at least one of second, minute, hour, day, month, year":                       {},
	}
	for want, l := range cases {
		if err := l.Validate("config"); err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestUsageFollowsKong(t *testing.T) {
	l := Limits{Second: ptr(5), Minute: ptr(10)}
	// Refused by the minute window: nothing was counted.
	u := l.usage(CounterResult{Admitted: false, States: []CounterState{{Count: 2, ResetMs: 400}, {Count: 10, ResetMs: 41_500}}})
	want := []WindowUsage{{"Second", 5, 3, 1}, {"Minute", 10, 0, 42}}
	if u.Admitted || len(u.Windows) != 2 || u.Windows[0] != want[0] || u.Windows[1] != want[1] {
		t.Errorf("got %+v, want %+v", u, want)
	}
}
