// Package procgroup starts child commands (go build, make, go install, a
// worker under test) that do not outlive the process that started them.
//
// A test binary or a bench run may die without cancelling its context: go
// test's -timeout panics it, go test or a user SIGKILLs it. A go build left
// running keeps a shared machine busy for minutes and holds whatever lock
// the run was started under (flock's descriptor is inherited). A command
// from Command is therefore
//   - sent SIGTERM by the kernel when the thread that started it dies
//     (Pdeathsig), that is when this process dies: Run and Start keep that
//     thread locked to a goroutine until the command has ended. SIGTERM,
//     not SIGKILL, so that a make passes it on: GNU make sends SIGTERM to
//     the recipes it runs when it gets one, and a make killed outright
//     leaves its go build running. go, sh and our binaries end on SIGTERM;
//   - the leader of its own process group, and a cancelled context kills
//     the whole group (go build's compile and link processes as well).
//
// A compile that go build had started when this process died still runs to
// its end (the signal reaches go build only); that is seconds.
package procgroup
