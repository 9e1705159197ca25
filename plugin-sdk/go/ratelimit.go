package wasmgate

// Building blocks for rate-limiting plugins, as the Rust SDK's ratelimit module: Kong's six
// fixed windows, and exact counting with the RateLimit-* / X-RateLimit-* / Retry-After headers
// in one host call (Limits.Count, through Counters.Limit).

import (
	"strconv"
	"strings"
)

// Limits is requests allowed per window (nil: no limit for that window). Embed it in a
// configuration; its JSON names are Kong's.
type Limits struct {
	Second *uint64 `json:"second" doc:"Requests per second."`
	Minute *uint64 `json:"minute" doc:"Requests per minute."`
	Hour   *uint64 `json:"hour" doc:"Requests per hour."`
	Day    *uint64 `json:"day" doc:"Requests per day."`
	Month  *uint64 `json:"month" doc:"Requests per calendar month (UTC)."`
	Year   *uint64 `json:"year" doc:"Requests per calendar year (UTC)."`
}

// window is one configured window.
type window struct {
	window Window
	name   string
	limit  uint64
}

// windows are the configured windows, shortest first.
func (l Limits) windows() []window {
	var out []window
	for i, limit := range []*uint64{l.Second, l.Minute, l.Hour, l.Day, l.Month, l.Year} {
		if limit != nil {
			out = append(out, window{Window(i), windowNames[i], *limit})
		}
	}
	return out
}

var windowNames = [...]string{"Second", "Minute", "Hour", "Day", "Month", "Year"}

// Validate checks that at least one window is set and that no longer window's limit is lower
// than a shorter one's; field names the limits in errors (e.g. "config").
func (l Limits) Validate(field string) error {
	var previous *window
	for _, w := range l.windows() {
		if previous != nil && w.limit < previous.limit {
			name, shorter := strings.ToLower(w.name), strings.ToLower(previous.name)
			return hostError(field + "." + name + ": the limit for " + name + " (" + strconv.FormatUint(w.limit, 10) +
				") cannot be lower than the limit for " + shorter + " (" + strconv.FormatUint(previous.limit, 10) + ")")
		}
		previous = &w
	}
	if previous == nil {
		return hostError(field + ": set at least one of second, minute, hour, day, month, year")
	}
	return nil
}

// WindowUsage is one window's state after counting a request.
type WindowUsage struct {
	// Name is "Second", "Minute", ... (as in the header names).
	Name string
	// Limit, Remaining requests, and seconds until the window resets.
	Limit, Remaining, Reset uint64
}

// Usage is the outcome of counting one request.
type Usage struct {
	// Admitted: the request is within every limit (and was counted).
	Admitted bool
	Windows  []WindowUsage
}

// usage turns the counters' answer into a Usage.
func (l Limits) usage(res CounterResult) Usage {
	u := Usage{Admitted: res.Admitted}
	for i, w := range l.windows() {
		// As Kong: a refused request is not counted, so the windows that refused it show 0 and
		// the others what they have left.
		count := res.States[i].Count
		u.Windows = append(u.Windows, WindowUsage{
			Name: w.name, Limit: w.limit, Remaining: w.limit - min(count, w.limit), Reset: max((res.States[i].ResetMs+999)/1000, 1),
		})
	}
	return u
}
