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

func TestHeadersFollowKong(t *testing.T) {
	l := Limits{Second: ptr(5), Minute: ptr(10)}
	u := l.usage(CounterResult{Admitted: false, States: []CounterState{{Count: 2, ResetMs: 400}, {Count: 10, ResetMs: 41_500}}})
	got := map[string]string{}
	for _, h := range u.Headers() {
		got[h.Name] = h.Value
	}
	want := map[string]string{
		"X-RateLimit-Limit-Second": "5", "X-RateLimit-Remaining-Second": "2",
		"X-RateLimit-Limit-Minute": "10", "X-RateLimit-Remaining-Minute": "0",
		"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "42", "Retry-After": "42",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}
