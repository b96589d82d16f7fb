package bus

// Priority is a job's scheduling class. A worker fills its free slots from
// the highest class that has work, keeps a share of its slots for
// interactive jobs, and shares each class fairly between tenants (see
// docs/scheduling.md).
//
// The class is a token of the request subject (Subjects.RequestFor):
// llm.req.<group>.interactive and llm.req.<group>.batch, while the bare
// v1 subject llm.req.<group> is the group's default class (PriorityDefault
// unless the model file sets the group's priority). Each class of a group
// has its own durable consumer (ConsumerNameFor).
type Priority string

// The classes, highest first.
const (
	// PriorityInteractive is for a person waiting for tokens.
	PriorityInteractive Priority = "interactive"
	// PriorityDefault is the group's default class: the bare subject.
	PriorityDefault Priority = "default"
	// PriorityBatch is for work that can wait (batches, backfills).
	PriorityBatch Priority = "batch"
)

// Priorities lists the classes, highest first.
var Priorities = []Priority{PriorityInteractive, PriorityDefault, PriorityBatch}

// ValidPriority reports whether p names a class. The empty string is not
// one (it means "not said": the default class).
func ValidPriority(p Priority) bool {
	switch p {
	case PriorityInteractive, PriorityDefault, PriorityBatch:
		return true
	}
	return false
}

// token is the class's subject token: none for the default class.
func (p Priority) token() string {
	if p == PriorityDefault || p == "" {
		return ""
	}
	return string(p)
}

// Rank orders the classes: 0 for interactive, 1 for default, 2 for batch
// (and for anything else).
func (p Priority) Rank() int {
	switch p {
	case PriorityInteractive:
		return 0
	case PriorityDefault, "":
		return 1
	}
	return 2
}
