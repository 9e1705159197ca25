package wasmgate

// Building blocks for rate-limiting plugins, as the Rust SDK's ratelimit module: Kong's six
// fixed windows, exact counting through the host's counters (Limits.Count), and the
// RateLimit-* / X-RateLimit-* / Retry-After headers.

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

// tightest is the window closest to its limit (Kong's choice for the RateLimit-* headers).
func (u Usage) tightest() *WindowUsage {
	var best *WindowUsage
	for i := range u.Windows {
		w := &u.Windows[i]
		if best == nil || w.Remaining < best.Remaining || (w.Remaining == best.Remaining && w.Limit > best.Limit) {
			best = w
		}
	}
	return best
}

// RetryAfter is the seconds until the request could be admitted.
func (u Usage) RetryAfter() uint64 {
	var after uint64
	for _, w := range u.Windows {
		if w.Remaining == 0 {
			after = max(after, w.Reset)
		}
	}
	return after
}

// Headers are X-RateLimit-Limit-<Window> and X-RateLimit-Remaining-<Window> for every window,
// RateLimit-Limit, -Remaining and -Reset for the tightest, and Retry-After when refused.
func (u Usage) Headers() []Header {
	headers := make([]Header, 0, len(u.Windows)*2+4)
	for _, w := range u.Windows {
		headers = append(headers,
			Header{"X-RateLimit-Limit-" + w.Name, strconv.FormatUint(w.Limit, 10)},
			Header{"X-RateLimit-Remaining-" + w.Name, strconv.FormatUint(w.Remaining, 10)})
	}
	if t := u.tightest(); t != nil {
		headers = append(headers,
			Header{"RateLimit-Limit", strconv.FormatUint(t.Limit, 10)},
			Header{"RateLimit-Remaining", strconv.FormatUint(t.Remaining, 10)},
			Header{"RateLimit-Reset", strconv.FormatUint(t.Reset, 10)})
	}
	if !u.Admitted {
		headers = append(headers, Header{"Retry-After", strconv.FormatUint(u.RetryAfter(), 10)})
	}
	return headers
}

// usage turns the counters' answer into a Usage.
func (l Limits) usage(res CounterResult) Usage {
	u := Usage{Admitted: res.Admitted}
	for i, w := range l.windows() {
		count := res.States[i].Count
		if !res.Admitted {
			count++ // a refused request still fills the window that refused it
		}
		u.Windows = append(u.Windows, WindowUsage{
			Name: w.name, Limit: w.limit, Remaining: w.limit - min(count, w.limit), Reset: (res.States[i].ResetMs + 999) / 1000,
		})
	}
	return u
}
