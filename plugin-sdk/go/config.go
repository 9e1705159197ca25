package wasmgate

// Configurations: JSON decoded into the plugin's type with errors that name the field, and the
// JSON Schema of that type (for the Admin API and `wasmgate plugin docs`).

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Decode parses a configuration into C. Struct tags on C's fields:
//   - `json:"name"`: the field's name;
//   - `doc:"..."`: its description (in the schema, and the plugin's README table);
//   - `default:"..."`: its value when the configuration leaves it out (JSON, or a plain string);
//   - `required:"true"`: it must be given;
//   - `enum:"a,b"`: the values it may take (a string).
//
// Unknown fields are refused; errors name the field path, e.g.
// "config.limits.minute: invalid type: string, expected uint64".
func Decode[C any](data string) (*C, error) {
	c := new(C)
	v := reflect.ValueOf(c).Elem()
	setDefaults(v)
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, configError(err, v.Type())
	}
	var given map[string]json.RawMessage
	if json.Unmarshal([]byte(data), &given) == nil && v.Kind() == reflect.Struct {
		for _, f := range reflect.VisibleFields(v.Type()) {
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			if _, present := given[name]; !present && f.Tag.Get("required") == "true" {
				return nil, ConfigError("missing field `" + name + "`")
			}
			if allowed := f.Tag.Get("enum"); allowed != "" && f.Type.Kind() == reflect.String {
				value := v.FieldByIndex(f.Index).String()
				if !slices.Contains(strings.Split(allowed, ","), value) {
					expected := "`" + strings.ReplaceAll(allowed, ",", "` or `") + "`"
					return nil, FieldError(name, "unknown variant `"+value+"`, expected "+expected)
				}
			}
		}
	}
	return c, nil
}

func configError(err error, t reflect.Type) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		msg := "invalid type: " + typeErr.Value + ", expected " + typeErr.Type.String()
		if typeErr.Field == "" {
			return hostError("config: " + msg)
		}
		return FieldError(fieldPath(typeErr.Field), msg)
	case errors.As(err, &syntaxErr):
		return hostError("config: invalid JSON: " + syntaxErr.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		msg := "unknown field `" + name + "`"
		if known := fieldNames(t); len(known) > 0 {
			msg += ", expected one of: " + strings.Join(known, ", ")
		}
		return FieldError(name, msg)
	}
	return hostError("config: " + strings.TrimPrefix(err.Error(), "json: "))
}

// setDefaults sets a struct's fields from their `default` tags.
func setDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for _, f := range reflect.VisibleFields(v.Type()) {
		if def, ok := f.Tag.Lookup("default"); ok && f.IsExported() {
			field := v.FieldByIndex(f.Index).Addr().Interface()
			if json.Unmarshal([]byte(def), field) != nil {
				json.Unmarshal([]byte(strconv.Quote(def)), field)
			}
		}
	}
}

// defaultValue is a `default` tag as a JSON value.
func defaultValue(tag string) any {
	var v any
	if json.Unmarshal([]byte(tag), &v) != nil {
		return tag
	}
	return v
}

// fieldPath writes encoding/json's "roles.0.name" as "roles[0].name".
func fieldPath(path string) string {
	var b strings.Builder
	for i, part := range strings.Split(path, ".") {
		if _, err := strconv.Atoi(part); err == nil {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// fieldNames is the sorted JSON names of a struct type's fields.
func fieldNames(t reflect.Type) []string {
	var names []string
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for _, f := range reflect.VisibleFields(t) {
		if name, ok := jsonName(f); ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// jsonName is the field's name in JSON, or false when encoding/json skips it.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() || f.Anonymous {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name, true
	}
	return f.Name, true
}

// Schema is the JSON Schema of configuration type C: types from the Go types, names from the
// json tags, descriptions from `doc:"..."` tags, and no properties beyond the declared ones.
func Schema[C any]() string {
	out, _ := json.Marshal(schemaOf(reflect.TypeFor[C]()))
	return string(out)
}

func schemaOf(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		if ty, ok := s["type"].(string); ok {
			s["type"] = []string{ty, "null"}
		}
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for _, f := range reflect.VisibleFields(t) {
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			s := schemaOf(f.Type)
			if f.Tag.Get("required") == "true" {
				required = append(required, name)
			}
			if allowed := f.Tag.Get("enum"); allowed != "" {
				s["enum"] = strings.Split(allowed, ",")
			}
			if doc := f.Tag.Get("doc"); doc != "" {
				s["description"] = doc
			}
			if def, ok := f.Tag.Lookup("default"); ok {
				s["default"] = defaultValue(def)
			}
			props[name] = s
		}
		schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			sort.Strings(required)
			schema["required"] = required
		}
		return schema
	}
	return map[string]any{}
}
