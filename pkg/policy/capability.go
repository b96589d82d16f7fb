package policy

import (
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/pkg/llm"
)

// CodeMissingCapability is the llm.Error Code of a request that no deployment
// of its group or of any group of its fallback chain can serve, because it
// has tools or images and no model takes them. Its Kind is KindBadRequest
// (the wire code invalid_request); its Message names the capability.
const CodeMissingCapability = "missing_capability"

// needs is what a request asks of a model beyond plain text.
type needs struct {
	tools  bool // len(req.Tools) > 0
	vision bool // an image part in some message
}

func needsOf(req *llm.Request) needs {
	return needs{tools: len(req.Tools) > 0, vision: req.HasImages()}
}

// serves reports whether d can take a request with needs n.
func (d *deployment) serves(n needs) bool {
	return (!n.tools || d.info.Tools) && (!n.vision || d.info.Vision)
}

// missing returns the capabilities of n that no deployment of g has, or nil
// when some deployment of g can serve n. A request needing both tools and
// vision that only split deployments offer (one has tools, another vision)
// misses both.
func (g *group) missing(n needs) []string {
	var tools, vision bool
	for _, d := range g.deps {
		if d.serves(n) {
			return nil
		}
		tools = tools || d.info.Tools
		vision = vision || d.info.Vision
	}
	var out []string
	if n.tools && !tools {
		out = append(out, "tools")
	}
	if n.vision && !vision {
		out = append(out, "vision")
	}
	if len(out) == 0 {
		// Each capability exists in the group, but never together.
		out = []string{"tools", "vision"}
	}
	return out
}

// describe names capabilities for messages: "tools (function calling)",
// "vision (image input)".
func describe(caps []string) string {
	words := make([]string, len(caps))
	for i, c := range caps {
		switch c {
		case "tools":
			words[i] = "tools (function calling)"
		case "vision":
			words[i] = "vision (image input)"
		default:
			words[i] = c
		}
	}
	return strings.Join(words, " and ")
}

// missingCapability is the error of a request no group of its chain can
// serve; groups are the groups tried, in order.
func missingCapability(caps []string, groups []string) *llm.Error {
	return &llm.Error{
		Kind: llm.KindBadRequest,
		Code: CodeMissingCapability,
		Message: fmt.Sprintf("missing capability: the request needs %s, which no deployment of group %s supports",
			describe(caps), quoteAll(groups)),
	}
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
