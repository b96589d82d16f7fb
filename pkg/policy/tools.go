package policy

import "github.com/switchyard/switchyard/pkg/llm"

// toolAssembler joins streamed tool-call fragments into whole calls.
type toolAssembler struct {
	order []int
	byIdx map[int]*llm.ToolCall
}

func (a *toolAssembler) add(d llm.ToolCallDelta) {
	if a.byIdx == nil {
		a.byIdx = map[int]*llm.ToolCall{}
	}
	tc, ok := a.byIdx[d.Index]
	if !ok {
		tc = &llm.ToolCall{}
		a.byIdx[d.Index] = tc
		a.order = append(a.order, d.Index)
	}
	if d.ID != "" {
		tc.ID = d.ID
	}
	if d.Name != "" {
		tc.Name = d.Name
	}
	tc.Arguments += d.Arguments
}

func (a *toolAssembler) calls() []llm.ToolCall {
	if len(a.order) == 0 {
		return nil
	}
	out := make([]llm.ToolCall, 0, len(a.order))
	for _, i := range a.order {
		out = append(out, *a.byIdx[i])
	}
	return out
}
