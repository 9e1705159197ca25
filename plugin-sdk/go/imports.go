//go:build wasip1

package wasmgate

// The host functions of the plugin world, grouped as in wit/plugin.wit: Request, Response,
// Context, Consumers, Counters, Cache, Clock, Upstreams, and Log.

import (
	"encoding/binary"
	"runtime"
	"unsafe"
)

// call runs an import that may allocate in guest memory, then drops what it pinned.
func call(f func()) {
	mark := len(pins)
	f()
	unpin(mark)
}

//go:wasmimport wasmgate:plugin/request@0.1.0 method
func reqMethod(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 scheme
func reqScheme(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 http-version
func reqHTTPVersion(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 tls-server-name
func reqTLSServerName(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 tls-client-subject
func reqTLSClientSubject(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 tls-client-fingerprint
func reqTLSClientFingerprint(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 host
func reqHost(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 port
func reqPort() uint32

//go:wasmimport wasmgate:plugin/request@0.1.0 path
func reqPath(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 query
func reqQuery(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 query-arg
func reqQueryArg(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 header
func reqHeader(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 header-values
func reqHeaderValues(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 headers
func reqHeaders(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 set-header
func reqSetHeader(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 add-header
func reqAddHeader(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 remove-header
func reqRemoveHeader(name unsafe.Pointer, nameLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 set-path
func reqSetPath(path unsafe.Pointer, pathLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 set-query
func reqSetQuery(some uint32, query unsafe.Pointer, queryLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 body
func reqBody(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/request@0.1.0 set-body
func reqSetBody(body unsafe.Pointer, bodyLen uint32)

//go:wasmimport wasmgate:plugin/request@0.1.0 client-ip
func reqClientIP(ret unsafe.Pointer)

// getString calls an import that returns a string through the return area.
func getString(f func(ret unsafe.Pointer)) (s string) {
	call(func() { f(unsafe.Pointer(&retArea[0])); s = liftString(ret(), 0) })
	return
}

// getOption calls an import that returns option<string> through the return area.
func getOption(f func(ret unsafe.Pointer)) (s string, ok bool) {
	call(func() { f(unsafe.Pointer(&retArea[0])); s, ok = liftOptionString(ret(), 0) })
	return
}

// named calls an import taking one string and returning through the return area.
func named(name string, f func(p unsafe.Pointer, n uint32, ret unsafe.Pointer), lift func(b []byte)) {
	p, n := str(name)
	call(func() { f(p, n, unsafe.Pointer(&retArea[0])); lift(ret()) })
	runtime.KeepAlive(name)
}

func twoStrings(a, b string, f func(unsafe.Pointer, uint32, unsafe.Pointer, uint32)) {
	pa, na := str(a)
	pb, nb := str(b)
	f(pa, na, pb, nb)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

func oneString(a string, f func(unsafe.Pointer, uint32)) {
	p, n := str(a)
	f(p, n)
	runtime.KeepAlive(a)
}

// headers are the header functions the request and the response share.
type headers struct {
	get    func(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)
	values func(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)
	all    func(ret unsafe.Pointer)
	set    func(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)
	add    func(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)
	remove func(name unsafe.Pointer, nameLen uint32)
}

// Header is the first value of a header.
func (h headers) Header(name string) (v string, ok bool) {
	named(name, h.get, func(b []byte) { v, ok = liftOptionString(b, 0) })
	return
}

// HeaderValues is every value of a header.
func (h headers) HeaderValues(name string) (v []string) {
	named(name, h.values, func(b []byte) { v = liftStrings(b, 0) })
	return
}

// Headers is every header.
func (h headers) Headers() (all []Header) {
	call(func() { h.all(unsafe.Pointer(&retArea[0])); all = liftHeaders(ret(), 0) })
	return
}

// SetHeader replaces a header.
func (h headers) SetHeader(name, value string) { twoStrings(name, value, h.set) }

// AddHeader adds a header value.
func (h headers) AddHeader(name, value string) { twoStrings(name, value, h.add) }

// RemoveHeader removes a header.
func (h headers) RemoveHeader(name string) { oneString(name, h.remove) }

type request struct{ headers }

// Request is the client request; its setters change what goes upstream. Its header methods
// (Header, HeaderValues, Headers, SetHeader, AddHeader, RemoveHeader) read and change the
// request's headers.
var Request = request{headers{reqHeader, reqHeaderValues, reqHeaders, reqSetHeader, reqAddHeader, reqRemoveHeader}}

// Method is the request method.
func (request) Method() string { return getString(reqMethod) }

// Scheme is how the client spoke to the gateway: "http" or "https"; "grpc" or "grpcs" for a
// gRPC call; "ws" or "wss" for a WebSocket handshake.
func (request) Scheme() string { return getString(reqScheme) }

// HTTPVersion is the HTTP version the client spoke: "1.0", "1.1" or "2".
func (request) HTTPVersion() string { return getString(reqHTTPVersion) }

// TLSServerName is the server name (SNI) of the client's TLS handshake, lower-cased; none over
// plain HTTP or when the client sent none.
func (request) TLSServerName() (string, bool) { return getOption(reqTLSServerName) }

// TLSClientSubject is the subject (CN=…,O=…) of the certificate the client presented (mutual
// TLS, verified against ssl_client_ca); none without one.
func (request) TLSClientSubject() (string, bool) { return getOption(reqTLSClientSubject) }

// TLSClientFingerprint is that certificate's SHA-256 fingerprint, lower-case hex.
func (request) TLSClientFingerprint() (string, bool) { return getOption(reqTLSClientFingerprint) }

// Host is the host the client asked for, without the port.
func (request) Host() string { return getString(reqHost) }

// Port is the port the client connected to.
func (request) Port() uint16 { return uint16(reqPort()) }

// Path is the normalized request path.
func (request) Path() string { return getString(reqPath) }

// Query is the raw query string, if any.
func (request) Query() (string, bool) { return getOption(reqQuery) }

// QueryArg is the first value of a query argument.
func (request) QueryArg(name string) (v string, ok bool) {
	named(name, reqQueryArg, func(b []byte) { v, ok = liftOptionString(b, 0) })
	return
}

// SetPath changes the path sent upstream.
func (request) SetPath(path string) { oneString(path, reqSetPath) }

// SetQuery changes the query sent upstream; nil removes it.
func (request) SetQuery(query *string) {
	some, p, n := optStr(query)
	reqSetQuery(some, p, n)
	runtime.KeepAlive(query)
}

// Body is the request body (up to 64 KiB), when the configuration asked for it.
func (request) Body() (body []byte, ok bool) {
	call(func() {
		reqBody(unsafe.Pointer(&retArea[0]))
		if b := ret(); b[0] != 0 {
			body, ok = liftBytes(b, 4), true
		}
	})
	return
}

// SetBody replaces the request body sent upstream.
func (request) SetBody(body []byte) {
	p, n := bytesArg(body)
	reqSetBody(p, n)
	runtime.KeepAlive(body)
}

// ClientIP is the client's address (after trusted X-Forwarded-For).
func (request) ClientIP() string { return getString(reqClientIP) }

//go:wasmimport wasmgate:plugin/response@0.1.0 status
func respStatus() uint32

//go:wasmimport wasmgate:plugin/response@0.1.0 set-status
func respSetStatus(status uint32)

//go:wasmimport wasmgate:plugin/response@0.1.0 header
func respHeader(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/response@0.1.0 header-values
func respHeaderValues(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/response@0.1.0 headers
func respHeaders(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/response@0.1.0 set-header
func respSetHeader(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport wasmgate:plugin/response@0.1.0 add-header
func respAddHeader(name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport wasmgate:plugin/response@0.1.0 remove-header
func respRemoveHeader(name unsafe.Pointer, nameLen uint32)

//go:wasmimport wasmgate:plugin/response@0.1.0 set-headers
func respSetHeaders(list unsafe.Pointer, n uint32)

//go:wasmimport wasmgate:plugin/response@0.1.0 source
func respSource() uint32

type response struct{ headers }

// Response is the response (in header-filter), or the headers to add to it (in rewrite and
// access); its header methods are the request's.
var Response = response{headers{respHeader, respHeaderValues, respHeaders, respSetHeader, respAddHeader, respRemoveHeader}}

// Status is the response status.
func (response) Status() uint16 { return uint16(respStatus()) }

// SetStatus changes the response status (header-filter).
func (response) SetStatus(status uint16) { respSetStatus(uint32(status)) }

// SetHeaders replaces several response headers in one call.
func (response) SetHeaders(headers []Header) {
	list, keep := lowerHeaders(headers)
	respSetHeaders(list, uint32(len(headers)))
	runtime.KeepAlive(keep)
	runtime.KeepAlive(headers)
}

// Source says who produced the response.
func (response) Source() ResponseSource { return ResponseSource(respSource()) }

// lowerHeaders lays out list<tuple<string, string>> in Go memory (kept alive by the caller).
func lowerHeaders(headers []Header) (unsafe.Pointer, []uint32) {
	if len(headers) == 0 {
		return nil, nil
	}
	words := make([]uint32, 4*len(headers))
	for i, h := range headers {
		words[i*4] = addr(unsafe.Pointer(unsafe.StringData(h.Name)))
		words[i*4+1] = uint32(len(h.Name))
		words[i*4+2] = addr(unsafe.Pointer(unsafe.StringData(h.Value)))
		words[i*4+3] = uint32(len(h.Value))
	}
	return unsafe.Pointer(&words[0]), words
}

//go:wasmimport wasmgate:plugin/context@0.1.0 ids
func ctxIDs(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 route-id
func ctxRouteID(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 route-name
func ctxRouteName(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 service-id
func ctxServiceID(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 service-name
func ctxServiceName(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 get
func ctxGet(key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 set
func ctxSet(key unsafe.Pointer, keyLen uint32, some uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport wasmgate:plugin/context@0.1.0 shared-get
func ctxSharedGet(key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/context@0.1.0 shared-set
func ctxSharedSet(key unsafe.Pointer, keyLen uint32, some uint32, value unsafe.Pointer, valueLen uint32)

type requestContext struct{}

// Context is what the gateway knows about the request (route, service) and the per-request values.
var Context requestContext

// IDs are whom and where the request is for, by id ("" when there is none).
type IDs struct{ Route, Service, Consumer, Credential string }

// IDs are the route's, service's, consumer's and credential's ids in one call.
func (requestContext) IDs() (ids IDs) {
	call(func() {
		ctxIDs(unsafe.Pointer(&retArea[0]))
		b := ret()
		ids.Route, _ = liftOptionString(b, 0)
		ids.Service, _ = liftOptionString(b, 12)
		ids.Consumer, _ = liftOptionString(b, 24)
		ids.Credential, _ = liftOptionString(b, 36)
	})
	return
}

// RouteID is the matched route's id.
func (requestContext) RouteID() (string, bool) { return getOption(ctxRouteID) }

// RouteName is the matched route's name.
func (requestContext) RouteName() (string, bool) { return getOption(ctxRouteName) }

// ServiceID is the matched service's id.
func (requestContext) ServiceID() (string, bool) { return getOption(ctxServiceID) }

// ServiceName is the matched service's name.
func (requestContext) ServiceName() (string, bool) { return getOption(ctxServiceName) }

// Get is this plugin's own per-request value (Kong's kong.ctx.plugin).
func (requestContext) Get(key string) (v string, ok bool) {
	named(key, ctxGet, func(b []byte) { v, ok = liftOptionString(b, 0) })
	return
}

// Set sets (or with nil, removes) this plugin's own per-request value.
func (requestContext) Set(key string, value *string) { setKey(key, value, ctxSet) }

// SharedGet is a per-request value shared by all plugins (Kong's kong.ctx.shared).
func (requestContext) SharedGet(key string) (v string, ok bool) {
	named(key, ctxSharedGet, func(b []byte) { v, ok = liftOptionString(b, 0) })
	return
}

// SharedSet sets (or with nil, removes) a shared per-request value.
func (requestContext) SharedSet(key string, value *string) { setKey(key, value, ctxSharedSet) }

func setKey(key string, value *string, f func(unsafe.Pointer, uint32, uint32, unsafe.Pointer, uint32)) {
	kp, kn := str(key)
	some, vp, vn := optStr(value)
	f(kp, kn, some, vp, vn)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
}

//go:wasmimport wasmgate:plugin/consumers@0.1.0 find
func conFind(id unsafe.Pointer, idLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 find-credential
func conFindCredential(kind unsafe.Pointer, kindLen uint32, key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 groups
func conGroups(id unsafe.Pointer, idLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 authenticate
func conAuthenticate(c uint32, cp unsafe.Pointer, cn uint32, k uint32, kp unsafe.Pointer, kn uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 set-consumer
func conSetConsumer(cp unsafe.Pointer, cn uint32, k uint32, kp unsafe.Pointer, kn uint32, anonymous uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 authenticated
func conAuthenticated(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 authenticated-credential
func conAuthenticatedCredential(ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 set-consumer-by-key
func conSetConsumerByKey(kind unsafe.Pointer, kindLen uint32, key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/consumers@0.1.0 authenticated-groups
func conAuthenticatedGroups(ret unsafe.Pointer)

type consumers struct{}

// Consumers finds consumers and credentials, and marks the request authenticated.
var Consumers consumers

func liftConsumer(b []byte) *Consumer {
	if b[0] == 0 {
		return nil
	}
	c := &Consumer{ID: liftString(b, 4), Tags: liftStrings(b, 36)}
	// option<consumer>: the record starts at 4: id 4..12, username 12..24, custom-id 24..36, tags 36..44.
	if v, ok := liftOptionString(b, 12); ok {
		c.Username = &v
	}
	if v, ok := liftOptionString(b, 24); ok {
		c.CustomID = &v
	}
	return c
}

func liftCredential(b []byte) *Credential {
	if b[0] == 0 {
		return nil
	}
	return &Credential{ID: liftString(b, 4), ConsumerID: liftString(b, 12)}
}

// Find looks a consumer up by id, then by username.
func (consumers) Find(idOrUsername string) (c *Consumer) {
	named(idOrUsername, conFind, func(b []byte) { c = liftConsumer(b) })
	return
}

// FindCredential finds a credential of kind (e.g. "key-auth") by its key.
func (consumers) FindCredential(kind, key string) (c *Credential) {
	kp, kn := str(kind)
	yp, yn := str(key)
	call(func() { conFindCredential(kp, kn, yp, yn, unsafe.Pointer(&retArea[0])); c = liftCredential(ret()) })
	runtime.KeepAlive(kind)
	runtime.KeepAlive(key)
	return
}

// Groups is the ACL groups of a consumer.
func (consumers) Groups(consumerID string) (g []string) {
	named(consumerID, conGroups, func(b []byte) { g = liftStrings(b, 0) })
	return
}

// Authenticate marks the request as made by this consumer (nil: anonymous).
func (consumers) Authenticate(consumerID, credentialID *string) (err error) {
	c, cp, cn := optStr(consumerID)
	k, kp, kn := optStr(credentialID)
	call(func() {
		conAuthenticate(c, cp, cn, k, kp, kn, unsafe.Pointer(&retArea[0]))
		err = liftResultUnit(ret())
	})
	runtime.KeepAlive(consumerID)
	runtime.KeepAlive(credentialID)
	return
}

// SetConsumer is Kong's set_consumer: Authenticate, and the X-Consumer-* headers upstream.
func (consumers) SetConsumer(consumerID string, credential *Credential, anonymous bool) (err error) {
	cp, cn := str(consumerID)
	var credID *string
	if credential != nil {
		credID = &credential.ID
	}
	k, kp, kn := optStr(credID)
	call(func() {
		conSetConsumer(cp, cn, k, kp, kn, uint32(b2u(anonymous)), unsafe.Pointer(&retArea[0]))
		err = liftResultUnit(ret())
	})
	runtime.KeepAlive(consumerID)
	runtime.KeepAlive(credID)
	return
}

// SetConsumerByKey finds the credential of kind (e.g. "key-auth") whose key is key and does what
// SetConsumer does for its consumer, in one host call: false, with nothing set, when no
// credential has that key.
func (consumers) SetConsumerByKey(kind, key string) (found bool, err error) {
	kp, kn := str(kind)
	yp, yn := str(key)
	call(func() {
		conSetConsumerByKey(kp, kn, yp, yn, unsafe.Pointer(&retArea[0]))
		// result<bool, string>: the payload is at 4.
		if b := ret(); b[0] != 0 {
			err = hostError(liftString(b, 4))
		} else {
			found = b[4] != 0
		}
	})
	runtime.KeepAlive(kind)
	runtime.KeepAlive(key)
	return
}

// AuthenticatedGroups is the ACL groups of the consumer the request was authenticated as (what
// Kong's acl plugin reads for it); false when no consumer is authenticated.
func (consumers) AuthenticatedGroups() (groups []string, ok bool) {
	call(func() {
		conAuthenticatedGroups(unsafe.Pointer(&retArea[0]))
		if b := ret(); b[0] != 0 {
			groups, ok = liftStrings(b, 4), true
		}
	})
	return
}

// Authenticated is the consumer the request was authenticated as.
func (consumers) Authenticated() (c *Consumer) {
	call(func() { conAuthenticated(unsafe.Pointer(&retArea[0])); c = liftConsumer(ret()) })
	return
}

// AuthenticatedCredential is the credential used, if any.
func (consumers) AuthenticatedCredential() (c *Credential) {
	call(func() { conAuthenticatedCredential(unsafe.Pointer(&retArea[0])); c = liftCredential(ret()) })
	return
}

//go:wasmimport wasmgate:plugin/counters@0.1.0 increment
func cntIncrement(ops unsafe.Pointer, n uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/counters@0.1.0 limit
func cntLimit(key unsafe.Pointer, keyLen uint32, windows unsafe.Pointer, n uint32, hide uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/counters@0.1.0 limit-by
func cntLimitBy(by uint32, arg unsafe.Pointer, argLen uint32, windows unsafe.Pointer, n uint32, hide uint32, ret unsafe.Pointer)

type counters struct{}

// Counters are windowed counters, exact under concurrency.
var Counters counters

// Increment applies all increments, or none if any would pass its limit.
func (counters) Increment(ops []CounterOp) (res CounterResult, err error) {
	words := make([]uint64, 5*max(len(ops), 1))
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	for i, op := range ops {
		at := i * 40
		binary.LittleEndian.PutUint32(mem[at:], addr(unsafe.Pointer(unsafe.StringData(op.Key))))
		binary.LittleEndian.PutUint32(mem[at+4:], uint32(len(op.Key)))
		mem[at+8] = uint8(op.Window)
		binary.LittleEndian.PutUint64(mem[at+16:], op.Delta)
		if op.Limit != nil {
			mem[at+24] = 1
			binary.LittleEndian.PutUint64(mem[at+32:], *op.Limit)
		}
	}
	call(func() {
		cntIncrement(unsafe.Pointer(&words[0]), uint32(len(ops)), unsafe.Pointer(&retArea[0]))
		res, err = liftCounterResult(ret())
	})
	runtime.KeepAlive(ops)
	runtime.KeepAlive(words)
	return
}

// Limit is Kong's rate limiting in one call: it counts one request against counter key in each
// window (all or none, as Increment), and the host sets X-RateLimit-Limit-<Window>,
// X-RateLimit-Remaining-<Window>, RateLimit-Limit/-Remaining/-Reset and, when refused,
// Retry-After on the response to come (only Retry-After with hideHeaders).
func (counters) Limit(key string, windows []WindowLimit, hideHeaders bool) (res CounterResult, err error) {
	kp, kn := str(key)
	res, err = limitCall(windows, hideHeaders, func(wp unsafe.Pointer, n, hide uint32, ret unsafe.Pointer) {
		cntLimit(kp, kn, wp, n, hide, ret)
	})
	runtime.KeepAlive(key)
	return
}

// LimitBy is Limit with the counter's key made by the host as Kong's rate-limiting makes it: the
// ids of the route and service the configuration is scoped to (none for a global one), then the
// identity by names (the client IP when the request has none).
func (counters) LimitBy(by LimitKey, windows []WindowLimit, hideHeaders bool) (res CounterResult, err error) {
	ap, an := str(by.arg)
	res, err = limitCall(windows, hideHeaders, func(wp unsafe.Pointer, n, hide uint32, ret unsafe.Pointer) {
		cntLimitBy(uint32(by.kind), ap, an, wp, n, hide, ret)
	})
	runtime.KeepAlive(by.arg)
	return
}

// limitCall lowers list<tuple<window, u64>> and the flag for f, and lifts its result.
func limitCall(windows []WindowLimit, hideHeaders bool, f func(windows unsafe.Pointer, n, hide uint32, ret unsafe.Pointer)) (res CounterResult, err error) {
	words := make([]uint64, 2*max(len(windows), 1))
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	for i, w := range windows {
		mem[i*16] = uint8(w.Window)
		binary.LittleEndian.PutUint64(mem[i*16+8:], w.Limit)
	}
	call(func() {
		f(unsafe.Pointer(&words[0]), uint32(len(windows)), uint32(b2u(hideHeaders)), unsafe.Pointer(&retArea[0]))
		res, err = liftCounterResult(ret())
	})
	runtime.KeepAlive(words)
	return
}

// liftCounterResult reads result<counter-result, string> from the return area.
func liftCounterResult(b []byte) (res CounterResult, err error) {
	if b[0] != 0 {
		return res, hostError(liftString(b, 4))
	}
	res.Admitted = b[4] != 0
	if n := int(u32(b, 12)); n > 0 {
		states := find(u32(b, 8))
		res.States = make([]CounterState, n)
		for i := range res.States {
			res.States[i] = CounterState{Count: u64(states, i*16), ResetMs: u64(states, i*16+8)}
		}
	}
	return res, nil
}

//go:wasmimport wasmgate:plugin/cache@0.1.0 get
func cacheGet(key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:plugin/cache@0.1.0 set
func cacheSet(key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32, ttlMs uint64)

//go:wasmimport wasmgate:plugin/cache@0.1.0 delete
func cacheDelete(key unsafe.Pointer, keyLen uint32)

type cache struct{}

// Cache is shared by all instances of this plugin, with a time to live per entry.
var Cache cache

// Get is a cached value.
func (cache) Get(key string) (v []byte, ok bool) {
	named(key, cacheGet, func(b []byte) {
		if b[0] != 0 {
			v, ok = liftBytes(b, 4), true
		}
	})
	return
}

// Set caches a value for ttlMs milliseconds.
func (cache) Set(key string, value []byte, ttlMs uint64) {
	kp, kn := str(key)
	vp, vn := bytesArg(value)
	cacheSet(kp, kn, vp, vn, ttlMs)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
}

// Delete removes a cached value.
func (cache) Delete(key string) { oneString(key, cacheDelete) }

//go:wasmimport wasmgate:plugin/logging@0.1.0 log
func logLog(level uint32, msg unsafe.Pointer, msgLen uint32)

// Log writes to the gateway's log, tagged with the plugin's name.
func Log(level LogLevel, message string) {
	p, n := str(message)
	logLog(uint32(level), p, n)
	runtime.KeepAlive(message)
}

//go:wasmimport wasmgate:plugin/clock@0.1.0 now-ms
func clockNowMs() uint64

//go:wasmimport wasmgate:plugin/clock@0.1.0 monotonic-ns
func clockMonotonicNs() uint64

type clock struct{}

// Clock is the host's time.
var Clock clock

// NowMs is the wall clock, milliseconds since the Unix epoch.
func (clock) NowMs() uint64 { return clockNowMs() }

// MonotonicNs is a monotonic clock in nanoseconds.
func (clock) MonotonicNs() uint64 { return clockMonotonicNs() }

//go:wasmimport wasmgate:plugin/upstreams@0.1.0 exists
func upExists(name unsafe.Pointer, nameLen uint32) uint32

//go:wasmimport wasmgate:plugin/upstreams@0.1.0 set-upstream
func upSetUpstream(name unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

type upstreams struct{}

// Upstreams chooses the upstream for this request (canary, blue-green).
var Upstreams upstreams

// Exists says whether an upstream of this name is configured.
func (upstreams) Exists(name string) bool {
	p, n := str(name)
	ok := upExists(p, n) != 0
	runtime.KeepAlive(name)
	return ok
}

// SetUpstream sends this request to the named upstream instead of the service's.
func (upstreams) SetUpstream(name string) (err error) {
	named(name, upSetUpstream, func(b []byte) { err = liftResultUnit(b) })
	return
}

//go:wasmimport wasmgate:metrics/metrics@0.1.0 declare
func metDeclare(name unsafe.Pointer, nameLen uint32, help unsafe.Pointer, helpLen uint32, kind uint32,
	labels unsafe.Pointer, labelsLen uint32, buckets unsafe.Pointer, bucketsLen uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:metrics/metrics@0.1.0 declare-top
func metDeclareTop(name unsafe.Pointer, nameLen uint32, help unsafe.Pointer, helpLen uint32,
	labels unsafe.Pointer, labelsLen uint32, key unsafe.Pointer, keyLen uint32, size uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:metrics/metrics@0.1.0 add
func metAdd(metric uint32, values unsafe.Pointer, valuesLen uint32, value uint64)

//go:wasmimport wasmgate:metrics/metrics@0.1.0 observe
func metObserve(metric uint32, values unsafe.Pointer, valuesLen uint32, value float64)

// lowerStrings lays out list<string> in Go memory (kept alive by the caller, with the strings).
func lowerStrings(list []string) (unsafe.Pointer, []uint32) {
	if len(list) == 0 {
		return nil, nil
	}
	words := make([]uint32, 2*len(list))
	for i, s := range list {
		words[i*2] = addr(unsafe.Pointer(unsafe.StringData(s)))
		words[i*2+1] = uint32(len(s))
	}
	return unsafe.Pointer(&words[0]), words
}

type metricsAPI struct{}

// Metrics are the plugin's own counters and histograms (wasmgate:metrics/metrics), exported on
// /metrics as wasmgate_plugin_<name> with a plugin label. Declare them in Configure; update them
// per request through the handle.
var Metrics metricsAPI

// Metric is the handle of a declared metric.
type Metric uint32

func (metricsAPI) declare(name, help string, kind uint32, buckets []float64, labels []string) (m Metric, err error) {
	np, nn := str(name)
	hp, hn := str(help)
	lp, keep := lowerStrings(labels)
	var bp unsafe.Pointer
	if len(buckets) > 0 {
		bp = unsafe.Pointer(&buckets[0])
	}
	call(func() {
		metDeclare(np, nn, hp, hn, kind, lp, uint32(len(labels)), bp, uint32(len(buckets)), unsafe.Pointer(&retArea[0]))
		b := ret()
		if b[0] != 0 {
			err = hostError(liftString(b, 4))
			return
		}
		m = Metric(u32(b, 4))
	})
	runtime.KeepAlive(name)
	runtime.KeepAlive(help)
	runtime.KeepAlive(labels)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(buckets)
	return
}

// Counter declares a counter with the given label names.
func (ms metricsAPI) Counter(name, help string, labels ...string) (Metric, error) {
	return ms.declare(name, help, 0, nil, labels)
}

// Histogram declares a histogram with bucket upper bounds (ascending) and label names.
func (ms metricsAPI) Histogram(name, help string, buckets []float64, labels ...string) (Metric, error) {
	return ms.declare(name, help, 1, buckets, labels)
}

// Top declares a top-N table: for each combination of labels, the size (at most 100) values of
// keyLabel with the highest totals. Update it with Add, the key's value last.
func (metricsAPI) Top(name, help, keyLabel string, size uint32, labels ...string) (m Metric, err error) {
	np, nn := str(name)
	hp, hn := str(help)
	kp, kn := str(keyLabel)
	lp, keep := lowerStrings(labels)
	call(func() {
		metDeclareTop(np, nn, hp, hn, lp, uint32(len(labels)), kp, kn, size, unsafe.Pointer(&retArea[0]))
		b := ret()
		if b[0] != 0 {
			err = hostError(liftString(b, 4))
			return
		}
		m = Metric(u32(b, 4))
	})
	runtime.KeepAlive(name)
	runtime.KeepAlive(help)
	runtime.KeepAlive(keyLabel)
	runtime.KeepAlive(labels)
	runtime.KeepAlive(keep)
	return
}

// Add adds to a counter (or a top-N table), with one value per declared label.
func (m Metric) Add(value uint64, labelValues ...string) {
	p, keep := lowerStrings(labelValues)
	metAdd(uint32(m), p, uint32(len(labelValues)), value)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(labelValues)
}

// Observe records one observation of a histogram.
func (m Metric) Observe(value float64, labelValues ...string) {
	p, keep := lowerStrings(labelValues)
	metObserve(uint32(m), p, uint32(len(labelValues)), value)
	runtime.KeepAlive(keep)
	runtime.KeepAlive(labelValues)
}
