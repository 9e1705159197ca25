// gray-release-go: the Go port of gray-release, with the same configuration and behaviour. It
// sends part of a route's traffic to a canary upstream. Selectors: client IPs or CIDR ranges,
// cookies and headers (name=value, or name for any value), and a sticky percentage of users
// chosen by a consistent hash (FNV-1a, as the Rust plugin) of the IP, a cookie, a header or the
// consumer, so that a user stays on one side whichever of the two plugins serves them.
package main

import (
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	wasmgate "github.com/wasmgate/wasmgate/plugin-sdk/go"
)

// Config is gray-release's configuration.
type Config struct {
	CanaryUpstream string   `json:"canary_upstream" required:"true" doc:"The upstream that receives canary traffic."`
	IPs            []string `json:"ips" default:"[]" doc:"Client IPs or CIDR ranges sent to the canary."`
	Cookies        []string `json:"cookies" default:"[]" doc:"Cookies sent to the canary: name=value, or name for any value."`
	Headers        []string `json:"headers" default:"[]" doc:"Headers sent to the canary: name=value, or name for any value."`
	Percentage     *float64 `json:"percentage" doc:"Share of users (0-100) sent to the canary, chosen by a consistent hash of hash_on."`
	HashOn         string   `json:"hash_on" default:"ip" doc:"What identifies a user for percentage: ip, consumer, cookie:NAME or header:NAME (the IP when that is missing)."`
	Combine        string   `json:"combine" default:"any" enum:"any,all" doc:"How selectors combine: any or all."`
	AnonymousOnly  bool     `json:"anonymous_only" default:"false" doc:"Only requests without credentials (users not logged in, including an anonymous fallback consumer) may go to the canary."`
	ResponseHeader *string  `json:"response_header" doc:"Response header that says which side served: canary or stable (none by default)."`

	nets []netip.Prefix
}

// GrayRelease is the plugin.
type GrayRelease struct{ wasmgate.Base[Config] }

// Info says what the plugin is.
func (GrayRelease) Info() wasmgate.Info {
	return wasmgate.Info{Version: "0.1.0", Priority: 880, Phases: wasmgate.PhaseAccess}
}

// pair splits "name=value" or "name".
func pair(s string) (name string, value string, hasValue bool) {
	name, value, hasValue = strings.Cut(s, "=")
	return strings.TrimSpace(name), strings.TrimSpace(value), hasValue
}

// Configure checks the configuration as the Rust plugin does, with the same messages.
func (GrayRelease) Configure(c *Config) (wasmgate.ConfigNeeds, error) {
	none := wasmgate.ConfigNeeds{}
	if !wasmgate.Upstreams.Exists(c.CanaryUpstream) {
		return none, wasmgate.FieldError("canary_upstream",
			"no upstream is named "+strconv.Quote(c.CanaryUpstream)+"; define it under [[upstreams]]")
	}
	if len(c.IPs) == 0 && len(c.Cookies) == 0 && len(c.Headers) == 0 && c.Percentage == nil {
		return none, wasmgate.ConfigError("give at least one selector: ips, cookies, headers or percentage")
	}
	if c.Percentage != nil && (*c.Percentage < 0 || *c.Percentage > 100) {
		return none, wasmgate.FieldError("percentage", "must be between 0 and 100")
	}
	kind, name, _ := strings.Cut(c.HashOn, ":")
	if c.HashOn != "ip" && c.HashOn != "consumer" && !((kind == "cookie" || kind == "header") && name != "") {
		return none, wasmgate.FieldError("hash_on",
			strconv.Quote(c.HashOn)+" is not one of ip, consumer, cookie:NAME, header:NAME")
	}
	for field, list := range map[string][]string{"cookies": c.Cookies, "headers": c.Headers} {
		for i, p := range list {
			if name, _, _ := pair(p); name == "" {
				return none, wasmgate.FieldError(field+"["+strconv.Itoa(i)+"]", "write name=value or name")
			}
		}
	}
	for i, s := range c.IPs {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			addr, err := netip.ParseAddr(s)
			if err != nil {
				return none, wasmgate.FieldError("ips["+strconv.Itoa(i)+"]",
					strconv.Quote(s)+" is not an IP address or CIDR range")
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.nets = append(c.nets, prefix)
	}
	return none, nil
}

// cookie is the value of the named request cookie.
func cookie(name string) (string, bool) {
	for _, header := range wasmgate.Request.HeaderValues("cookie") {
		for _, c := range strings.Split(header, ";") {
			if n, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && n == name {
				return v, true
			}
		}
	}
	return "", false
}

// anyPair reports whether one of pairs matches what lookup finds.
func anyPair(pairs []string, lookup func(string) (string, bool)) bool {
	for _, p := range pairs {
		name, want, hasValue := pair(p)
		if v, ok := lookup(name); ok && (!hasValue || v == want) {
			return true
		}
	}
	return false
}

// bucket is where this user falls, 0-9999: the same on every request and every gateway.
func bucket(c *Config) uint64 {
	var key string
	var ok bool
	switch kind, name, _ := strings.Cut(c.HashOn, ":"); {
	case kind == "cookie":
		key, ok = cookie(name)
	case kind == "header":
		key, ok = wasmgate.Request.Header(name)
	case c.HashOn == "consumer":
		if consumer := wasmgate.Consumers.Authenticated(); consumer != nil {
			key, ok = consumer.ID, true
		}
	}
	if !ok {
		key = wasmgate.Request.ClientIP()
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() % 10_000
}

func toCanary(c *Config) bool {
	if c.AnonymousOnly && wasmgate.Consumers.AuthenticatedCredential() != nil {
		return false
	}
	matches := make([]bool, 0, 4)
	if len(c.nets) > 0 {
		ip, err := netip.ParseAddr(wasmgate.Request.ClientIP())
		in := false
		for _, n := range c.nets {
			in = in || (err == nil && n.Contains(ip))
		}
		matches = append(matches, in)
	}
	if len(c.Cookies) > 0 {
		matches = append(matches, anyPair(c.Cookies, cookie))
	}
	if len(c.Headers) > 0 {
		matches = append(matches, anyPair(c.Headers, wasmgate.Request.Header))
	}
	if c.Percentage != nil {
		matches = append(matches, float64(bucket(c)) < *c.Percentage*100)
	}
	for _, m := range matches {
		if m == (c.Combine == "any") {
			return m
		}
	}
	return c.Combine == "all"
}

// Access picks the side.
func (GrayRelease) Access(c *Config) (wasmgate.Action, error) {
	canary := toCanary(c)
	if canary {
		if err := wasmgate.Upstreams.SetUpstream(c.CanaryUpstream); err != nil {
			return wasmgate.Proceed, err
		}
	}
	if c.ResponseHeader != nil {
		side := "stable"
		if canary {
			side = "canary"
		}
		wasmgate.Response.SetHeader(*c.ResponseHeader, side)
	}
	return wasmgate.Proceed, nil
}

func init() { wasmgate.Register[Config](GrayRelease{}) }

func main() {}
