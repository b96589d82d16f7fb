package structured_test

import (
	"encoding/json"
	"fmt"

	"github.com/switchyard/switchyard/pkg/llm/structured"
)

func ExampleSchema_ValidateText() {
	sch, err := structured.Compile(json.RawMessage(`{
		"type": "object",
		"properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
		"required": ["city", "temp"]
	}`))
	if err != nil {
		panic(err)
	}
	answer := "Here it is:\n```json\n{\"city\": \"Oslo\", \"temp\": \"cold\"}\n```"
	_, raw, violations, err := sch.ValidateText(answer)
	fmt.Println(raw, err)
	fmt.Println(structured.FormatViolations(violations, 5))
	// Output:
	// {"city": "Oslo", "temp": "cold"} <nil>
	// - at "/temp": got string, want number
}

func ExampleParsePartial() {
	for _, text := range []string{
		`{"city": "Os`,
		`{"city": "Oslo", "temp": 1`,
		`{"city": "Oslo", "temp": 12, "ok": tr`,
		`{"city": "Oslo", "temp": 12, "ok": true}`,
	} {
		v, _ := structured.ParsePartial(text)
		b, _ := json.Marshal(v)
		fmt.Println(string(b))
	}
	// Output:
	// {"city":"Os"}
	// {"city":"Oslo"}
	// {"city":"Oslo","temp":12}
	// {"city":"Oslo","ok":true,"temp":12}
}
