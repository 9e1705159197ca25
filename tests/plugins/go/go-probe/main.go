// Test plugin go-probe: the Go SDK's host functions and failure modes, driven by request headers.
//
// access:
//   - x-misbehave: panic (a Go panic), error (the plugin's error), loop (never returns);
//     otherwise the upstream gets x-misbehave-ran: ok;
//   - x-consumer: looks the consumer up; the upstream gets x-go-consumer: id|username|custom_id;
//   - x-key: authenticates with that key-auth key (SetConsumerByKey); the upstream gets
//     x-go-key: found|groups, and the request is counted per consumer (CountBy) under the
//     configured limit, without the rate-limit headers, instead of the count below;
//   - x-escape: tries to read /etc/passwd, list /, and read $HOME; the upstream gets x-go-escape
//     with what it got;
//   - x-in: copied upstream as x-go-seen, with the method, path, query argument q and client IP,
//     and x-go-protocol with the scheme, the HTTP version, the TLS server name and the client
//     certificate's subject ("-": none);
//   - x-drop: removed before the upstream;
//   - the upstream gets x-go-ids: "ok" when Context.IDs agrees with RouteID and ServiceID and
//     no consumer is authenticated, else what it got;
//   - a path under /rewrite/ goes upstream as /rewritten/...;
//   - x-answer: an early 418 answer (with the value `bare`: no headers, the body "bare");
//   - counts requests per minute under the configured limit with the SDK's rate-limit helpers
//     (the X-RateLimit-* headers; 429 past it);
//   - keeps the path in the per-request context.
//
// header-filter: x-go-context (the context value), x-go-count and x-stamp (the build's version).
//
// log: with log_file and/or log_endpoint, the request's log record goes to those sinks, and to
// the file also an entry of the probe's own: {"go_probe":PATH,"record_bytes":N}.
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
	// LogFile and LogEndpoint are log sinks (allowed in plugins.toml).
	LogFile     string `json:"log_file" doc:"A file the log records go to."`
	LogEndpoint string `json:"log_endpoint" doc:"An HTTP endpoint the log records go to."`

	requests       wasmgate.Metric
	file, endpoint wasmgate.Sink
	toFile, toHTTP bool
}

// Probe is the plugin.
type Probe struct{ wasmgate.Base[Config] }

// Info says what the plugin is.
func (Probe) Info() wasmgate.Info {
	return wasmgate.Info{Version: version, Priority: 100, Phases: wasmgate.PhaseAccess | wasmgate.PhaseHeaderFilter | wasmgate.PhaseLog, FailClosed: true}
}

// Configure refuses a prefix with spaces, naming the field.
func (Probe) Configure(c *Config) (wasmgate.ConfigNeeds, error) {
	if strings.ContainsRune(c.Prefix, ' ') {
		return wasmgate.ConfigNeeds{}, wasmgate.FieldError("prefix", "must not contain spaces")
	}
	requests, err := wasmgate.Metrics.Counter("go_probe_requests_total", "Requests go-probe saw.", "method")
	c.requests = requests
	if err != nil {
		return wasmgate.ConfigNeeds{}, err
	}
	if c.LogFile != "" {
		if c.file, err = wasmgate.Sinks.OpenFile(c.LogFile, false, 100); err != nil {
			return wasmgate.ConfigNeeds{}, wasmgate.FieldError("log_file", err.Error())
		}
		c.toFile = true
	}
	if c.LogEndpoint != "" {
		options := wasmgate.HTTPOptions{
			Method: "PUT", ContentType: "application/json", Headers: []wasmgate.Header{{Name: "x-go", Value: "sink"}},
			TimeoutMs: 2000, KeepaliveMs: 1000,
			Queue: wasmgate.QueueOptions{MaxBatchSize: 1, MaxEntries: 100, MaxRetryTimeMs: 10_000, InitialRetryDelayMs: 10, MaxRetryDelayMs: 100},
		}
		if c.endpoint, err = wasmgate.Sinks.OpenHTTP(c.LogEndpoint, options); err != nil {
			return wasmgate.ConfigNeeds{}, wasmgate.FieldError("log_endpoint", err.Error())
		}
		c.toHTTP = true
	}
	return wasmgate.ConfigNeeds{}, nil
}

// Log sends the request's record to the configured sinks.
func (Probe) Log(c *Config) error {
	if c.toFile {
		c.file.SendRecord()
		record := wasmgate.Sinks.Serialize()
		c.file.Send(`{"go_probe":"` + wasmgate.Request.Path() + `","record_bytes":` + strconv.Itoa(len(record)) + `}`)
	}
	if c.toHTTP {
		c.endpoint.SendRecord()
	}
	return nil
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
	if key, ok := wasmgate.Request.Header("x-key"); ok {
		return byKey(c, key)
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
		sni, ok := wasmgate.Request.TLSServerName()
		if !ok {
			sni = "-"
		}
		subject, ok := wasmgate.Request.TLSClientSubject()
		if !ok {
			subject = "-"
		}
		protocol := []string{wasmgate.Request.Scheme(), wasmgate.Request.HTTPVersion(), sni, subject}
		wasmgate.Request.SetHeader("x-go-protocol", strings.Join(protocol, " "))
	}
	wasmgate.Request.RemoveHeader("x-drop")
	ids := wasmgate.Context.IDs()
	route, _ := wasmgate.Context.RouteID()
	service, _ := wasmgate.Context.ServiceID()
	if ids == (wasmgate.IDs{Route: route, Service: service}) && route != "" && service != "" {
		wasmgate.Request.SetHeader("x-go-ids", "ok")
	} else {
		wasmgate.Request.SetHeader("x-go-ids", ids.Route+"|"+ids.Service+"|"+ids.Consumer+"|"+ids.Credential)
	}
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
		usage, err := wasmgate.Limits{Minute: &c.Limit}.Count("hits", false)
		if err != nil {
			return wasmgate.Proceed, err
		}
		if action := usage.Verdict(429, "API rate limit exceeded"); !usage.Admitted {
			return action, nil
		}
		count := strconv.FormatUint(c.Limit-usage.Windows[0].Remaining, 10)
		wasmgate.Context.Set("count", &count)
	}
	wasmgate.Context.Set("path", &path)
	return wasmgate.Proceed, nil
}

// byKey authenticates with a key-auth key and counts the request per consumer.
func byKey(c *Config, key string) (wasmgate.Action, error) {
	found, err := wasmgate.Consumers.SetConsumerByKey("key-auth", key)
	if err != nil {
		return wasmgate.Proceed, err
	}
	groups, _ := wasmgate.Consumers.AuthenticatedGroups()
	wasmgate.Request.SetHeader("x-go-key", strconv.FormatBool(found)+"|"+strings.Join(groups, ","))
	if c.Limit == 0 {
		return wasmgate.Proceed, nil
	}
	usage, err := wasmgate.Limits{Minute: &c.Limit}.CountBy(wasmgate.LimitByConsumer, true)
	if err != nil {
		return wasmgate.Proceed, err
	}
	return usage.Verdict(429, "API rate limit exceeded"), nil
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
