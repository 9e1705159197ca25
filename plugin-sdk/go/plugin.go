// Package wasmgate is the Go SDK for wasmgate plugins: stock Go (1.24 or newer), built with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, then made a component by
// `wasmgate plugin componentize` (or by the gateway when it finds a core module).
//
// A plugin is a type with a typed configuration, registered in an init function:
//
//	type Config struct {
//		Header string `json:"header" doc:"Header to add upstream."`
//	}
//
//	type Hello struct{ wasmgate.Base[Config] }
//
//	func (Hello) Info() wasmgate.Info {
//		return wasmgate.Info{Version: "0.1.0", Priority: 1000, Phases: wasmgate.PhaseAccess}
//	}
//
//	func (Hello) Access(c *Config) (wasmgate.Action, error) {
//		wasmgate.Request.SetHeader(c.Header, "world")
//		return wasmgate.Proceed, nil
//	}
//
//	func init() { wasmgate.Register[Config](Hello{}) }
//	func main() {}
//
// The host functions are grouped as the WIT interfaces are: Request, Response, Context,
// Consumers, Counters, Cache, Clock, Upstreams and Log.
package wasmgate

import (
	"encoding/json"
	"strconv"
)

// Phases is a set of phases; the host calls only those a plugin declares.
type Phases uint8

const (
	// PhaseRewrite runs before routing (global plugins only).
	PhaseRewrite Phases = 1 << iota
	// PhaseAccess runs after routing, before the upstream.
	PhaseAccess
	// PhaseHeaderFilter sees the response status and headers.
	PhaseHeaderFilter
	// PhaseBodyFilter sees response body chunks.
	PhaseBodyFilter
	// PhaseLog runs after the response was sent.
	PhaseLog
)

// Info is what a plugin says about itself.
type Info struct {
	// Version of the plugin.
	Version string
	// Priority: higher runs first (Kong's PRIORITY).
	Priority int32
	// Phases implemented.
	Phases Phases
	// FailClosed answers 500 when the plugin fails (auth, access control); otherwise it is skipped.
	FailClosed bool
	// NoConsumer: the plugin cannot be scoped to a consumer (Kong's no_consumer; auth plugins).
	NoConsumer bool
	schema     string
}

// ConfigNeeds is what a configuration needs from the host.
type ConfigNeeds struct {
	// RequestBody: read the request body (up to 64 KiB) before access runs, for Request.Body.
	RequestBody bool
}

// Header is one header field, as (name, value).
type Header struct {
	Name, Value string
}

// Answer is an early answer: status, headers and body.
type Answer struct {
	Status  uint16
	Headers []Header
	Body    []byte
}

// Action is what a rewrite or access phase decided: Proceed, or an early answer.
type Action struct {
	respond *Answer
}

// Proceed goes on with the next plugin and phase.
var Proceed = Action{}

// Respond stops the chain and answers the client (Kong's kong.response.exit).
func Respond(status uint16, headers []Header, body []byte) Action {
	return Action{respond: &Answer{Status: status, Headers: headers, Body: body}}
}

// Responds reports whether the action answers the client, and with what.
func (a Action) Responds() (*Answer, bool) { return a.respond, a.respond != nil }

// JSONMessage is an early answer {"message": ...} in JSON, as Kong's plugins give.
func JSONMessage(status uint16, message string, headers ...Header) Action {
	body, _ := json.Marshal(map[string]string{"message": message})
	all := append([]Header{{"content-type", "application/json; charset=utf-8"}}, headers...)
	return Respond(status, all, body)
}

// Plugin is what Register takes. Embed Base[C] for the phases you do not implement.
type Plugin[C any] interface {
	// Info is the plugin's version, priority and phases.
	Info() Info
	// Configure checks what JSON decoding cannot and prepares derived state in the config.
	// It runs when a configuration is loaded; an error rejects that configuration (name the
	// field: "config.name: ...", see FieldError).
	Configure(config *C) (ConfigNeeds, error)
	// Rewrite runs before routing (global plugins only).
	Rewrite(config *C) (Action, error)
	// Access runs after routing, before the upstream: authenticate, limit, rewrite, answer early.
	Access(config *C) (Action, error)
	// HeaderFilter sees the response status and headers.
	HeaderFilter(config *C) error
	// BodyFilter sees a response body chunk; return (replacement, true, nil) to replace it.
	BodyFilter(config *C, chunk []byte, endOfStream bool) ([]byte, bool, error)
	// Log runs after the response: logging and metrics.
	Log(config *C) error
}

// Base implements every phase as a no-op; embed it in a plugin type.
type Base[C any] struct{}

// Configure accepts the configuration as decoded.
func (Base[C]) Configure(*C) (ConfigNeeds, error) { return ConfigNeeds{}, nil }

// Rewrite proceeds.
func (Base[C]) Rewrite(*C) (Action, error) { return Proceed, nil }

// Access proceeds.
func (Base[C]) Access(*C) (Action, error) { return Proceed, nil }

// HeaderFilter does nothing.
func (Base[C]) HeaderFilter(*C) error { return nil }

// BodyFilter passes chunks on unchanged.
func (Base[C]) BodyFilter(*C, []byte, bool) ([]byte, bool, error) { return nil, false, nil }

// Log does nothing.
func (Base[C]) Log(*C) error { return nil }

// hostError is an error message from the host or for it.
type hostError string

func (e hostError) Error() string { return string(e) }

// FieldError is a configuration error that names its field, e.g. FieldError("ips[0]", "...").
func FieldError(field, message string) error { return hostError("config." + field + ": " + message) }

// ConfigError is an error about the configuration as a whole.
func ConfigError(message string) error { return hostError("config: " + message) }

// handlers are the registered plugin's entry points, with the configuration type erased.
type handlers struct {
	info         Info
	configure    func(id uint64, json string) (ConfigNeeds, error)
	rewrite      func(id uint64) (Action, error)
	access       func(id uint64) (Action, error)
	headerFilter func(id uint64) error
	bodyFilter   func(id uint64, chunk []byte, end bool) ([]byte, bool, error)
	log          func(id uint64) error
}

var registered *handlers

// Register makes p the module's plugin. Call it once, from an init function.
func Register[C any](p Plugin[C]) {
	info := p.Info()
	info.schema = Schema[C]()
	configs := map[uint64]*C{}
	with := func(id uint64) (*C, error) {
		c, ok := configs[id]
		if !ok {
			return nil, hostError("configuration " + strconv.FormatUint(id, 10) + " was not configured in this instance")
		}
		return c, nil
	}
	registered = &handlers{
		info: info,
		configure: func(id uint64, data string) (ConfigNeeds, error) {
			c, err := Decode[C](data)
			if err != nil {
				return ConfigNeeds{}, err
			}
			needs, err := p.Configure(c)
			if err != nil {
				return ConfigNeeds{}, err
			}
			configs[id] = c
			return needs, nil
		},
		rewrite: func(id uint64) (Action, error) {
			c, err := with(id)
			if err != nil {
				return Proceed, err
			}
			return p.Rewrite(c)
		},
		access: func(id uint64) (Action, error) {
			c, err := with(id)
			if err != nil {
				return Proceed, err
			}
			return p.Access(c)
		},
		headerFilter: func(id uint64) error {
			c, err := with(id)
			if err != nil {
				return err
			}
			return p.HeaderFilter(c)
		},
		bodyFilter: func(id uint64, chunk []byte, end bool) ([]byte, bool, error) {
			c, err := with(id)
			if err != nil {
				return nil, false, err
			}
			return p.BodyFilter(c, chunk, end)
		},
		log: func(id uint64) error {
			c, err := with(id)
			if err != nil {
				return err
			}
			return p.Log(c)
		},
	}
}
