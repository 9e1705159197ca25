package wasmgate

import (
	"strings"
	"testing"
)

type limits struct {
	Minute *uint64 `json:"minute" doc:"Requests per minute."`
	Roles  []role  `json:"roles"`
	Mode   string  `json:"mode" default:"fast" enum:"fast,slow"`
	Name   string  `json:"name" required:"true"`
	Ratio  float64 `json:"ratio" default:"0.5"`
	skip   int
}

type role struct {
	Name string `json:"name"`
}

func TestErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"name": "n", "mode": "odd"}`: "config.mode: unknown variant `odd`, expected `fast` or `slow`",
		`{"minute": 1}`:                "config: missing field `name`",
		`{"minute": "x"}`:              "config.minute: invalid type: string, expected uint64",
		`{"roles": [{"name": 3}]}`:     "config.roles[0].name: invalid type: number, expected string",
		`{"minutes": 1}`:               "config.minutes: unknown field `minutes`, expected one of: minute, mode, name, ratio, roles",
		`{"minute": 1`:                 "config: ",
		`[]`:                           "config: invalid type: array",
	}
	for in, want := range cases {
		_, err := Decode[limits](in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
	c, err := Decode[limits](`{"name": "n", "minute": 5, "roles": [{"name": "a"}]}`)
	if err != nil || *c.Minute != 5 || c.Roles[0].Name != "a" || c.Mode != "fast" || c.Ratio != 0.5 {
		t.Fatalf("decoded %+v, %v", c, err)
	}
}

func TestSchema(t *testing.T) {
	got := Schema[limits]()
	want := `{"additionalProperties":false,"properties":{"minute":{"description":"Requests per minute.","minimum":0,"type":["integer","null"]},"mode":{"default":"fast","enum":["fast","slow"],"type":"string"},"name":{"type":"string"},"ratio":{"default":0.5,"type":"number"},"roles":{"items":{"additionalProperties":false,"properties":{"name":{"type":"string"}},"type":"object"},"type":"array"}},"required":["name"],"type":"object"}`
	if got != want {
		t.Fatalf("schema\n got %s\nwant %s", got, want)
	}
}
