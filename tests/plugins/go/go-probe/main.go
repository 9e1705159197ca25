// Test plugin go-probe: the Go SDK's host functions and failure modes, driven by request headers.
//
// access:
//   - x-misbehave: panic (a Go panic), error (the plugin's error), loop (never returns);
//     otherwise the upstream gets x-misbehave-ran: ok;
//   - x-consumer: looks the consumer up; the upstream gets x-go-consumer: id|username|custom_id;
//   - x-escape: tries to read /etc/passwd, list /, and read $HOME; the upstream gets x-go-escape
//     with what it got;
//   - x-in: copied upstream as x-go-seen, with the method, path, query argument q and client IP;
//   - x-drop: removed before the upstream;
//   - a path under /rewrite/ goes upstream as /rewritten/...;
//   - x-answer: an early 418 answer (with the value `bare`: no headers, the body "bare");
//   - counts requests per minute under the configured limit with the SDK's rate-limit helpers
//     (the X-RateLimit-* headers; 429 past it);
//   - keeps the path in the per-request context.
//
// header-filter: x-go-context (the context value), x-go-count and x-stamp (the build's version).
//
// metrics: go_probe_requests_total{method} counts the requests that reach the end of access.
package main

import (
	"os"
	"strconv"
	"strings"

	wasmgate "github.com/wasmgate/wasmgate/plugin-sdk/go"
)

// version is set at build time (-X main.version=2) for the hot-load test.
var version = "1"

// Config is the probe's configuration.
type Config struct {
	Limit  uint64 `json:"limit" doc:"Requests per minute before 429 (0: no limit)."`
	Prefix string `json:"prefix" doc:"Prefix of the x-go-seen value."`

	requests wasmgate.Metric
}

// Probe is the plugin.
type Probe struct{ wasmgate.Base[Config] }

// Info says what the plugin is.
func (Probe) Info() wasmgate.Info {
	return wasmgate.Info{Version: version, Priority: 100, Phases: wasmgate.PhaseAccess | wasmgate.PhaseHeaderFilter, FailClosed: true}
}

// Configure refuses a prefix with spaces, naming the field.
func (Probe) Configure(c *Config) (wasmgate.ConfigNeeds, error) {
	if strings.ContainsRune(c.Prefix, ' ') {
		return wasmgate.ConfigNeeds{}, wasmgate.FieldError("prefix", "must not contain spaces")
	}
	requests, err := wasmgate.Metrics.Counter("go_probe_requests_total", "Requests go-probe saw.", "method")
	c.requests = requests
	return wasmgate.ConfigNeeds{}, err
}

type failure string

func (f failure) Error() string { return string(f) }

// Access does what the request's headers ask.
func (Probe) Access(c *Config) (wasmgate.Action, error) {
	switch mode, _ := wasmgate.Request.Header("x-misbehave"); mode {
	case "panic":
		panic("go-probe was asked to panic")
	case "error":
		return wasmgate.Proceed, failure("go-probe was asked to fail")
	case "loop":
		for n := 0; ; n++ {
			if n < 0 {
				break
			}
		}
	}
	wasmgate.Request.SetHeader("x-misbehave-ran", "ok")
	c.requests.Add(1, wasmgate.Request.Method())
	if name, ok := wasmgate.Request.Header("x-consumer"); ok {
		found := "none"
		if c := wasmgate.Consumers.Find(name); c != nil && c.Username != nil && c.CustomID != nil {
			found = c.ID + "|" + *c.Username + "|" + *c.CustomID
		}
		wasmgate.Request.SetHeader("x-go-consumer", found)
	}
	if _, ok := wasmgate.Request.Header("x-escape"); ok {
		secret, readErr := os.ReadFile("/etc/passwd")
		entries, listErr := os.ReadDir("/")
		got := []string{strconv.Itoa(len(secret)), strconv.FormatBool(readErr != nil),
			strconv.Itoa(len(entries)), strconv.FormatBool(listErr != nil), "home=" + os.Getenv("HOME")}
		wasmgate.Request.SetHeader("x-go-escape", strings.Join(got, " "))
	}
	if in, ok := wasmgate.Request.Header("x-in"); ok {
		q, _ := wasmgate.Request.QueryArg("q")
		seen := []string{c.Prefix + in, wasmgate.Request.Method(), wasmgate.Request.Path(), q, wasmgate.Request.ClientIP()}
		wasmgate.Request.SetHeader("x-go-seen", strings.Join(seen, " "))
	}
	wasmgate.Request.RemoveHeader("x-drop")
	path := wasmgate.Request.Path()
	if rest, ok := strings.CutPrefix(path, "/rewrite/"); ok {
		wasmgate.Request.SetPath("/rewritten/" + rest)
	}
	if answer, ok := wasmgate.Request.Header("x-answer"); ok {
		if answer == "bare" {
			return wasmgate.Respond(418, nil, []byte("bare")), nil
		}
		return wasmgate.JSONMessage(418, "go-probe answered", wasmgate.Header{Name: "x-go", Value: "early"}), nil
	}
	if c.Limit > 0 {
		usage, err := wasmgate.Limits{Minute: &c.Limit}.Count("hits")
		if err != nil {
			return wasmgate.Proceed, err
		}
		if action := usage.Verdict(false, 429, "API rate limit exceeded"); !usage.Admitted {
			return action, nil
		}
		count := strconv.FormatUint(c.Limit-usage.Windows[0].Remaining, 10)
		wasmgate.Context.Set("count", &count)
	}
	wasmgate.Context.Set("path", &path)
	return wasmgate.Proceed, nil
}

// HeaderFilter reports the context and the version.
func (Probe) HeaderFilter(*Config) error {
	if path, ok := wasmgate.Context.Get("path"); ok {
		wasmgate.Response.SetHeader("x-go-context", path)
	}
	if count, ok := wasmgate.Context.Get("count"); ok {
		wasmgate.Response.SetHeader("x-go-count", count)
	}
	wasmgate.Response.SetHeader("x-stamp", "v"+version)
	return nil
}

func init() { wasmgate.Register[Config](Probe{}) }

func main() {}
