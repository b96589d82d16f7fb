#!/usr/bin/awk -f
# Reads `go test -v` output and prints, for each failed test, what it
# logged itself: its "name_test.go:123: ..." lines with the lines that
# continue them, testify's blocks among them. Left out: the container log
# tails a failed scenario prints ("last 40 log lines of ..."), whose
# files the suite keeps, and lines the test did not log (testcontainers,
# fmt.Print). A test's lines are found by the name of the last "=== RUN",
# "=== CONT" or "=== NAME" line, as go test -v marks whose output follows.
/^=== (RUN|CONT|NAME) / { run = $3; keep = 0; next }
/^=== / { keep = 0; next }
/^ *--- FAIL: / {
	name = $3
	print $0
	printf "%s", buf[name]
	delete buf[name]
	keep = 0
	next
}
/^ *--- (PASS|SKIP): / { delete buf[$3]; keep = 0; next }
/^ +[A-Za-z0-9_]+_test\.go:[0-9]+: / {
	keep = ($0 !~ /_test\.go:[0-9]+: last [0-9]+ log lines of /)
	if (keep) buf[run] = buf[run] $0 "\n"
	next
}
# A message's further lines are indented deeper than its first.
keep && /^        / { buf[run] = buf[run] $0 "\n"; next }
{ keep = 0 }
# A test binary that panicked or ran out of time (go test -timeout) prints
# no "--- FAIL" for the test it was in: print what that test logged, then
# the panic's first line and the tests it names as running.
/^panic: / && !panicked { panicked = 1; inpanic = run; tail = $0 "\n"; next }
/^\trunning tests:$/ { running = 1; tail = tail $0 "\n"; next }
running && /^\t\t/ { tail = tail $0 "\n"; next }
{ running = 0 }
END {
	if (panicked) {
		if (inpanic != "") { print "--- PANIC in " inpanic; printf "%s", buf[inpanic] }
		printf "%s", tail
	}
}
