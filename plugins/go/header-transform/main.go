// header-transform-go: a small example plugin in Go. It adds, renames and removes request
// headers on the way to the upstream, optionally rewrites the path prefix, and adds response
// headers; a request without a required header gets an early 400.
package main

import (
	"strconv"
	"strings"

	wasmgate "github.com/wasmgate/wasmgate/plugin-sdk/go"
)

// Config is the plugin's configuration.
type Config struct {
	Add     map[string]string `json:"add" doc:"Request headers to set (name = value)."`
	Rename  map[string]string `json:"rename" doc:"Request headers to rename (old = new)."`
	Remove  []string          `json:"remove" doc:"Request headers to remove."`
	Require []string          `json:"require" doc:"Request headers that must be present, or the answer is 400."`
	// StripPrefix and AddPrefix rewrite the upstream path: the one is removed, the other put in front.
	StripPrefix string            `json:"strip_prefix" doc:"Path prefix removed before the upstream."`
	AddPrefix   string            `json:"add_prefix" doc:"Path prefix added before the upstream."`
	Response    map[string]string `json:"response" doc:"Response headers to set (name = value)."`
}

// HeaderTransform is the plugin.
type HeaderTransform struct{ wasmgate.Base[Config] }

// Info says what the plugin is.
func (HeaderTransform) Info() wasmgate.Info {
	return wasmgate.Info{Version: "0.1.0", Priority: 800, Phases: wasmgate.PhaseAccess | wasmgate.PhaseHeaderFilter}
}

// Configure checks the configuration.
func (HeaderTransform) Configure(c *Config) (wasmgate.ConfigNeeds, error) {
	for i, name := range c.Remove {
		if strings.TrimSpace(name) == "" {
			return wasmgate.ConfigNeeds{}, wasmgate.FieldError("remove["+strconv.Itoa(i)+"]", "a header name cannot be empty")
		}
	}
	if c.AddPrefix != "" && !strings.HasPrefix(c.AddPrefix, "/") {
		return wasmgate.ConfigNeeds{}, wasmgate.FieldError("add_prefix", "must start with /")
	}
	return wasmgate.ConfigNeeds{}, nil
}

// Access changes the request.
func (HeaderTransform) Access(c *Config) (wasmgate.Action, error) {
	for _, name := range c.Require {
		if _, ok := wasmgate.Request.Header(name); !ok {
			return wasmgate.JSONMessage(400, "missing header "+name), nil
		}
	}
	for old, renamed := range c.Rename {
		if values := wasmgate.Request.HeaderValues(old); len(values) > 0 {
			wasmgate.Request.RemoveHeader(old)
			for _, v := range values {
				wasmgate.Request.AddHeader(renamed, v)
			}
		}
	}
	for _, name := range c.Remove {
		wasmgate.Request.RemoveHeader(name)
	}
	for name, value := range c.Add {
		wasmgate.Request.SetHeader(name, value)
	}
	if c.StripPrefix != "" || c.AddPrefix != "" {
		path := wasmgate.Request.Path()
		if rest, ok := strings.CutPrefix(path, c.StripPrefix); ok {
			path = rest
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		wasmgate.Request.SetPath(strings.TrimSuffix(c.AddPrefix, "/") + path)
	}
	return wasmgate.Proceed, nil
}

// HeaderFilter adds the response headers.
func (HeaderTransform) HeaderFilter(c *Config) error {
	for name, value := range c.Response {
		wasmgate.Response.SetHeader(name, value)
	}
	return nil
}

func init() { wasmgate.Register[Config](HeaderTransform{}) }

func main() {}
