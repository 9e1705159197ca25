package wasmgate

// The WIT interface's types (wit/plugin.wit, interface types), for plugins and the SDK.

// ResponseSource says who produced a response.
type ResponseSource uint8

const (
	// FromService is the upstream's response.
	FromService ResponseSource = iota
	// FromExit is a plugin's early answer.
	FromExit
	// FromError is the gateway's error answer.
	FromError
)

// Consumer is an API client known to the gateway.
type Consumer struct {
	ID       string
	Username *string
	CustomID *string
	Tags     []string
}

// Credential is a credential of a consumer.
type Credential struct {
	ID, ConsumerID string
}

// Window is a fixed counter window, aligned to the start of the period (UTC).
type Window uint8

// The windows.
const (
	Second Window = iota
	Minute
	Hour
	Day
	Month
	Year
)

// CounterOp is one counter to increment.
type CounterOp struct {
	// Key is the counter's name; counters are private to each plugin.
	Key    string
	Window Window
	Delta  uint64
	// Limit, when set, refuses the whole batch if this counter would go over it.
	Limit *uint64
}

// CounterState is a counter after an increment.
type CounterState struct {
	Count, ResetMs uint64
}

// WindowLimit is one window of Counters.Limit and its limit.
type WindowLimit struct {
	Window Window
	Limit  uint64
}

// CounterResult is the outcome of a batch: all increments applied, or none.
type CounterResult struct {
	Admitted bool
	States   []CounterState
}

// LogLevel is a log severity.
type LogLevel uint8

// The log levels.
const (
	LevelTrace LogLevel = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

// LimitKey is whose requests a rate limit counts together (Kong's limit_by), for
// Counters.LimitBy and Limits.CountBy. A request that lacks the identity is counted by its client
// IP. The zero value is LimitByConsumer, Kong's default.
type LimitKey struct {
	kind uint8
	arg  string
}

var (
	// LimitByConsumer counts by the authenticated consumer, else the credential.
	LimitByConsumer = LimitKey{kind: 0}
	// LimitByCredential counts by the credential the request authenticated with.
	LimitByCredential = LimitKey{kind: 1}
	// LimitByIP counts by the client IP.
	LimitByIP = LimitKey{kind: 2}
	// LimitByService counts by the service.
	LimitByService = LimitKey{kind: 3}
)

// LimitByHeader counts by the first value of request header name.
func LimitByHeader(name string) LimitKey { return LimitKey{kind: 4, arg: name} }

// LimitByPath counts requests to exactly path together (others by client IP).
func LimitByPath(path string) LimitKey { return LimitKey{kind: 5, arg: path} }
