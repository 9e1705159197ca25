//go:build wasip1

package wasmgate

// Count counts one request against counter key in every window, exactly: when any window is full
// nothing is counted and the request is not admitted. The host sets Kong's headers on the
// response to come (only Retry-After, when refused, with hideHeaders).
func (l Limits) Count(key string, hideHeaders bool) (Usage, error) {
	return l.count(func(limits []WindowLimit) (CounterResult, error) { return Counters.Limit(key, limits, hideHeaders) })
}

// CountBy is Count with the counter's key made by the host as Kong's rate-limiting makes it (see
// Counters.LimitBy): one host call, and no ids read into the plugin.
func (l Limits) CountBy(by LimitKey, hideHeaders bool) (Usage, error) {
	return l.count(func(limits []WindowLimit) (CounterResult, error) { return Counters.LimitBy(by, limits, hideHeaders) })
}

func (l Limits) count(f func([]WindowLimit) (CounterResult, error)) (Usage, error) {
	windows := l.windows()
	limits := make([]WindowLimit, len(windows))
	for i, w := range windows {
		limits[i] = WindowLimit{Window: w.window, Limit: w.limit}
	}
	res, err := f(limits)
	if err != nil {
		return Usage{}, err
	}
	return l.usage(res), nil
}

// Verdict is the access phase's answer: over a limit, status with {"message": message} (the host
// adds the headers); otherwise Proceed.
func (u Usage) Verdict(status uint16, message string) Action {
	if u.Admitted {
		return Proceed
	}
	return JSONMessage(status, message)
}
