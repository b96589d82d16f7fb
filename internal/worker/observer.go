package worker

import (
	"time"

	"github.com/switchyard/switchyard/pkg/bus"
	"github.com/switchyard/switchyard/pkg/policy"
)

// Observer is told about every job, for metrics. Its methods are called on
// the job's goroutine and must be fast and safe for concurrent use.
type Observer interface {
	// JobStarted is called when a job is sent to the router.
	JobStarted(group string)
	// JobDone is called once per answered job: rejected, expired,
	// cancelled or executed. It is not called for a job handed back.
	JobDone(JobReport)
	// JobHandedBack is called instead of JobDone for a started job that
	// the worker's shutdown handed back for redelivery: it ends the job's
	// JobStarted, with no result.
	JobHandedBack(group string)
}

// JobReport describes an answered job.
type JobReport struct {
	Group string
	// Class is the class the job was scheduled as (see Config.Classes); ""
	// for a stored job that no consumer delivered (an unknown group's).
	Class  bus.Priority
	Result *bus.Result
	// Outcome is the router's, nil when the job never reached it.
	Outcome *policy.Outcome
	// Started is true when JobStarted was called for this job.
	Started bool
	// QueueWait is the time from publication to pick-up.
	QueueWait time.Duration
	// Restarts counts restart events by reason code.
	Restarts map[string]int
	// Delivery is the JetStream delivery count of this attempt.
	Delivery int
}

type nopObserver struct{}

func (nopObserver) JobStarted(string)    {}
func (nopObserver) JobDone(JobReport)    {}
func (nopObserver) JobHandedBack(string) {}
