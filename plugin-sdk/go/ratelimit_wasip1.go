//go:build wasip1

package wasmgate

import "strconv"

// Count counts one request against counter key in every window, exactly: when any window is full
// nothing is counted and the request is not admitted.
func (l Limits) Count(key string) (Usage, error) {
	windows := l.windows()
	ops := make([]CounterOp, len(windows))
	for i, w := range windows {
		limit := w.limit
		ops[i] = CounterOp{Key: key, Window: w.window, Delta: 1, Limit: &limit}
	}
	res, err := Counters.Increment(ops)
	if err != nil {
		return Usage{}, err
	}
	return l.usage(res), nil
}

// Verdict is the access phase's answer: over a limit, status with {"message": message}, the
// headers (unless hide) and always Retry-After; otherwise Proceed, with the headers set on the
// response to come (one host call; no header-filter phase needed).
func (u Usage) Verdict(hide bool, status uint16, message string) Action {
	var headers []Header
	if !hide {
		headers = u.Headers()
	}
	if u.Admitted {
		if len(headers) > 0 {
			Response.SetHeaders(headers)
		}
		return Proceed
	}
	if hide {
		headers = append(headers, Header{"Retry-After", strconv.FormatUint(u.RetryAfter(), 10)})
	}
	return JSONMessage(status, message, headers...)
}
