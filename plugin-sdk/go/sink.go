//go:build wasip1

package wasmgate

// Log records and the sinks the host writes them to (wasmgate:log/sink), as the Rust SDK's sink
// module: open a sink in Configure (the operator must allow its file or endpoint for the module
// in plugins.toml), then hand it the request's record or entries of your own; the host writes
// them off the request path through a bounded queue.

import (
	"encoding/binary"
	"runtime"
	"unsafe"
)

//go:wasmimport wasmgate:log/sink@0.1.0 open-file
func sinkOpenFile(path unsafe.Pointer, pathLen uint32, reopen uint32, maxEntries uint32, ret unsafe.Pointer)

// open-http takes 16 flat parameters (the most that go flat): the endpoint, then the options.
//
//go:wasmimport wasmgate:log/sink@0.1.0 open-http
func sinkOpenHTTP(endpoint unsafe.Pointer, endpointLen uint32, method unsafe.Pointer, methodLen uint32,
	contentType unsafe.Pointer, contentTypeLen uint32, headers unsafe.Pointer, headersLen uint32,
	timeoutMs, keepaliveMs, maxBatchSize, maxCoalescingDelayMs, maxEntries, maxRetryTimeMs,
	initialRetryDelayMs, maxRetryDelayMs uint32, ret unsafe.Pointer)

//go:wasmimport wasmgate:log/sink@0.1.0 serialize
func sinkSerialize(ret unsafe.Pointer)

//go:wasmimport wasmgate:log/sink@0.1.0 send-record
func sinkSendRecord(sink uint32)

//go:wasmimport wasmgate:log/sink@0.1.0 send
func sinkSend(sink uint32, entry unsafe.Pointer, entryLen uint32)

// Sink is the handle of an open sink.
type Sink uint32

// QueueOptions are how entries wait and are retried (Kong's queue settings; times in ms).
type QueueOptions struct {
	MaxBatchSize, MaxCoalescingDelayMs, MaxEntries, MaxRetryTimeMs, InitialRetryDelayMs, MaxRetryDelayMs uint32
}

// HTTPOptions are how entries are sent to an endpoint.
type HTTPOptions struct {
	// Method is POST, PUT or PATCH.
	Method      string
	ContentType string
	Headers     []Header
	// TimeoutMs bounds connecting, writing and reading; KeepaliveMs keeps an idle connection.
	TimeoutMs, KeepaliveMs uint32
	Queue                  QueueOptions
}

type sinks struct{}

// Sinks open log sinks and hand them entries.
var Sinks sinks

// OpenFile opens (or shares) a sink appending one line per entry to path, reopened when
// logrotate moves it, or for every batch with reopen; at most maxEntries wait.
func (sinks) OpenFile(path string, reopen bool, maxEntries uint32) (s Sink, err error) {
	p, n := str(path)
	flag := uint32(0)
	if reopen {
		flag = 1
	}
	call(func() {
		sinkOpenFile(p, n, flag, maxEntries, unsafe.Pointer(&retArea[0]))
		s, err = liftSink(ret())
	})
	runtime.KeepAlive(path)
	return
}

// OpenHTTP opens (or shares) a sink sending entries to endpoint, batched and retried.
func (sinks) OpenHTTP(endpoint string, o HTTPOptions) (s Sink, err error) {
	ep, en := str(endpoint)
	mp, mn := str(o.Method)
	cp, cn := str(o.ContentType)
	headers := make([]uint32, 4*max(len(o.Headers), 1))
	for i, h := range o.Headers {
		headers[i*4], headers[i*4+1] = addr(unsafe.Pointer(unsafe.StringData(h.Name))), uint32(len(h.Name))
		headers[i*4+2], headers[i*4+3] = addr(unsafe.Pointer(unsafe.StringData(h.Value))), uint32(len(h.Value))
	}
	q := o.Queue
	call(func() {
		sinkOpenHTTP(ep, en, mp, mn, cp, cn, unsafe.Pointer(&headers[0]), uint32(len(o.Headers)),
			o.TimeoutMs, o.KeepaliveMs, q.MaxBatchSize, q.MaxCoalescingDelayMs, q.MaxEntries, q.MaxRetryTimeMs,
			q.InitialRetryDelayMs, q.MaxRetryDelayMs, unsafe.Pointer(&retArea[0]))
		s, err = liftSink(ret())
	})
	runtime.KeepAlive(endpoint)
	runtime.KeepAlive(o)
	runtime.KeepAlive(headers)
	return
}

// liftSink reads result<u32, string> from the return area.
func liftSink(b []byte) (Sink, error) {
	if b[0] != 0 {
		return 0, hostError(liftString(b, 4))
	}
	return Sink(binary.LittleEndian.Uint32(b[4:])), nil
}

// Serialize is Kong's log record of the current request as JSON (complete in the log phase).
func (sinks) Serialize() string { return getString(sinkSerialize) }

// SendRecord queues the current request's log record on the sink, without copying it through
// the plugin.
func (s Sink) SendRecord() { sinkSendRecord(uint32(s)) }

// Send queues an entry of the plugin's own (one line; a JSON value for HTTP sinks).
func (s Sink) Send(entry string) {
	p, n := str(entry)
	sinkSend(uint32(s), p, n)
	runtime.KeepAlive(entry)
}
